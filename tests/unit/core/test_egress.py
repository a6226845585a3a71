"""The server's own HTTP requests: no private addresses in production, no redirects, bounded."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from authserver.config import Config
from authserver.core.egress import MAX_RESPONSE, EgressError, is_public_address, post_form

Handler = Callable[[Request], Response]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], tuple[str, list[Request]]]]:
    servers: list[tuple[BaseWSGIServer, threading.Thread]] = []

    def start(handler: Handler) -> tuple[str, list[Request]]:
        seen: list[Request] = []

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            request = Request(environ)
            request.get_data()
            seen.append(request)
            return handler(request)(environ, start_response)

        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}", seen

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(5)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.8",
        "172.16.3.4",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "224.0.0.1",
        "100.64.0.1",
    ],
)
def test_private_loopback_link_local_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_global_addresses_are_public(address: str) -> None:
    assert is_public_address(address)


def test_a_loopback_url_is_refused_unless_private_addresses_are_allowed(serve: Any) -> None:
    url, seen = serve(lambda request: Response("ok"))

    with pytest.raises(EgressError, match="non-public address"):
        post_form(url + "/logout", {"a": "b"}, timeout=2, allow_private=False)
    with pytest.raises(EgressError, match="non-public address"):
        post_form(url.replace("127.0.0.1", "localhost") + "/x", {}, timeout=2, allow_private=False)
    assert seen == []

    answer = post_form(url + "/logout?x=1", {"a": "b"}, timeout=2, allow_private=True)
    assert answer.status == 200 and answer.body == b"ok"
    (request,) = seen
    assert request.method == "POST" and request.full_path == "/logout?x=1"
    assert request.form["a"] == "b"


def test_redirects_are_not_followed(serve: Any) -> None:
    target, reached = serve(lambda request: Response("moved here"))
    url, _ = serve(lambda request: Response("", status=307, headers={"Location": target + "/"}))

    answer = post_form(url, {}, timeout=2, allow_private=True)

    assert answer.status == 307
    assert reached == []


def test_only_the_first_bytes_of_an_answer_are_read(serve: Any) -> None:
    url, _ = serve(lambda request: Response(b"x" * (10 * MAX_RESPONSE)))

    answer = post_form(url, {}, timeout=2, allow_private=True)

    assert len(answer.body) == MAX_RESPONSE


def test_a_server_that_does_not_answer_in_time_fails_within_the_timeout(serve: Any) -> None:
    url, _ = serve(lambda request: (time.sleep(3), Response("late"))[1])

    started = time.monotonic()
    with pytest.raises(EgressError, match="timed out"):
        post_form(url, {}, timeout=0.5, allow_private=True)
    assert time.monotonic() - started < 2


def test_other_schemes_and_unresolvable_hosts_are_refused() -> None:
    with pytest.raises(EgressError):
        post_form("ftp://example.com/x", {}, timeout=1, allow_private=True)
    with pytest.raises(EgressError, match="cannot resolve"):
        post_form("https://no-such-host.invalid/x", {}, timeout=1, allow_private=True)


def test_production_refuses_private_addresses_unless_configured() -> None:
    production = {"env": "production", "issuer": "https://id.example.com", "secret_key": "s" * 40}

    assert not Config.from_env({}, production).outbound_private_allowed
    assert Config.from_env(
        {}, {**production, "allow_private_outbound": True}
    ).outbound_private_allowed
    assert Config.from_env(
        {}, {"env": "development", "secret_key": "s" * 40}
    ).outbound_private_allowed


def test_https_certificates_are_verified(tmp_path: Any) -> None:
    from tests.browser.servers import self_signed_certificate

    certificate = self_signed_certificate(tmp_path)
    server = make_server("127.0.0.1", 0, Response("ok"), threaded=True, ssl_context=certificate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(EgressError, match="CERTIFICATE_VERIFY_FAILED"):
            post_form(f"https://127.0.0.1:{server.server_port}/", {}, timeout=2, allow_private=True)
    finally:
        server.shutdown()
        thread.join(5)
