"""core.fetch: the rules of the server's own requests, against real servers on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request

from authserver.core.fetch import (
    FetchError,
    FetchPolicy,
    fetch_json,
    is_public_address,
    post_form,
    resolve,
)
from tests.fetch_servers import WsgiApp, certificate, json_document, serve

# Loopback servers are private addresses on plain http: these tests allow both, except
# where refused.
LOOPBACK = FetchPolicy(
    allow_private_addresses=True, allow_loopback_http=True, connect_timeout=1.0, read_timeout=0.5
)
DOCUMENT = b'["https://app.example.com/cb"]'


def recording(app: WsgiApp) -> tuple[WsgiApp, list[Request]]:
    """`app`, and the list of requests it has received."""
    seen: list[Request] = []

    def record(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data()
        seen.append(request)
        return app(environ, start_response)

    return record, seen


def test_a_json_document_is_fetched() -> None:
    with serve(json_document(DOCUMENT)) as url:
        assert fetch_json(url + "/sector.json?v=1", LOOPBACK) == ["https://app.example.com/cb"]


def test_a_form_is_posted_and_its_answer_returned() -> None:
    app, seen = recording(json_document(b"ok"))
    with serve(app) as url:
        answer = post_form(url + "/logout?x=1", {"logout_token": "a.b.c"}, LOOPBACK)

    assert answer.status == 200 and answer.body == b"ok" and not answer.truncated
    (request,) = seen
    assert request.method == "POST" and request.full_path == "/logout?x=1"
    assert request.mimetype == "application/x-www-form-urlencoded"
    assert request.form["logout_token"] == "a.b.c"


def test_https_is_verified_against_the_configured_ca(tmp_path: Path) -> None:
    tls = certificate(tmp_path)
    with serve(json_document(DOCUMENT), tls=tls) as url:
        trusted = FetchPolicy(allow_private_addresses=True, ca_file=tls.cert_file)
        assert fetch_json(url, trusted) == ["https://app.example.com/cb"]
        assert post_form(url, {}, trusted).status == 200
        # The system's CAs do not know the self-signed certificate.
        untrusted = FetchPolicy(allow_private_addresses=True)
        with pytest.raises(FetchError, match="SSLCertVerificationError"):
            fetch_json(url, untrusted)
        with pytest.raises(FetchError, match="SSLCertVerificationError"):
            post_form(url, {}, untrusted)


def test_plain_http_is_refused_by_default() -> None:
    app, seen = recording(json_document(DOCUMENT))
    with serve(app) as url:
        policy = FetchPolicy(allow_private_addresses=True)
        with pytest.raises(FetchError, match="must use https"):
            fetch_json(url, policy)
        with pytest.raises(FetchError, match="must use https"):
            post_form(url, {}, policy)
    assert seen == []


def test_plain_http_is_refused_to_an_address_that_is_not_loopback() -> None:
    """No connection is even tried: 10.255.255.1 would cross a network in the clear."""
    started = time.monotonic()
    with pytest.raises(FetchError, match="plain http only to a loopback address"):
        post_form("http://10.255.255.1/logout", {}, LOOPBACK)
    assert time.monotonic() - started < 0.5


def test_a_slow_server_times_out() -> None:
    def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(2)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [DOCUMENT]

    with serve(slow) as url:
        for send in (lambda: fetch_json(url, LOOPBACK), lambda: post_form(url, {}, LOOPBACK)):
            started = time.monotonic()
            with pytest.raises(FetchError, match="did not answer in time"):
                send()
            assert time.monotonic() - started < 1.5


def test_a_trickling_server_is_cut_off_at_the_deadline() -> None:
    """Each byte arrives within the read timeout, the whole answer does not."""

    def trickle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        for _ in range(40):
            time.sleep(0.1)
            yield b" "

    assert LOOPBACK.deadline == 1.5
    with serve(trickle) as url:
        for send in (lambda: fetch_json(url, LOOPBACK), lambda: post_form(url, {}, LOOPBACK)):
            started = time.monotonic()
            with pytest.raises(FetchError, match="did not answer in time"):
                send()
            assert time.monotonic() - started < 2.5


def test_a_declared_oversized_answer_is_refused() -> None:
    with (
        serve(json_document(b"[" + b'"x",' * 40_000 + b'"x"]')) as url,
        pytest.raises(FetchError, match="more than 65536 bytes"),
    ):
        fetch_json(url, LOOPBACK)


def test_an_oversized_answer_without_a_length_is_refused_while_reading() -> None:
    def endless(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        for _ in range(100):
            yield b" " * 8192

    with serve(endless) as url, pytest.raises(FetchError, match="more than 1000 bytes"):
        fetch_json(url, replace(LOOPBACK, max_bytes=1000))


def test_only_the_first_bytes_of_a_posts_answer_are_read() -> None:
    with serve(json_document(b"x" * 40_000)) as url:
        answer = post_form(url, {}, replace(LOOPBACK, max_bytes=4096))

    assert answer.status == 200
    assert answer.body == b"x" * 4096 and answer.truncated


def test_a_redirect_is_not_followed() -> None:
    moved = json_document(b"", "302 Found", Location="http://169.254.169.254/latest/meta-data")
    with serve(moved) as url, pytest.raises(FetchError, match="redirect, which is not followed"):
        fetch_json(url, LOOPBACK)


def test_a_post_answered_with_a_redirect_gets_the_status_unfollowed() -> None:
    target, reached = recording(json_document(b"moved here"))
    with (
        serve(target) as target_url,
        serve(json_document(b"", "307 Temporary Redirect", Location=target_url)) as url,
    ):
        answer = post_form(url, {"logout_token": "a.b.c"}, LOOPBACK)

    assert answer.status == 307
    assert reached == []


def test_an_error_status_is_refused() -> None:
    with (
        serve(json_document(b"[]", "404 Not Found")) as url,
        pytest.raises(FetchError, match="HTTP status 404"),
    ):
        fetch_json(url, LOOPBACK)


def test_a_body_that_is_not_json_is_refused() -> None:
    with (
        serve(json_document(b"<html>hello</html>")) as url,
        pytest.raises(FetchError, match="did not return JSON"),
    ):
        fetch_json(url, LOOPBACK)


def test_a_private_address_is_refused_unless_allowed() -> None:
    app, seen = recording(json_document(DOCUMENT))
    with serve(app) as url:
        refused = replace(LOOPBACK, allow_private_addresses=False)
        for target in (url, url.replace("127.0.0.1", "localhost")):
            with pytest.raises(FetchError, match="non-public address"):
                fetch_json(target, refused)
            with pytest.raises(FetchError, match="non-public address"):
                post_form(target + "/logout", {"logout_token": "a.b.c"}, refused)
        assert seen == []

        assert post_form(url + "/logout", {}, LOOPBACK).status == 200
    assert len(seen) == 1


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata, link-local
        "100.64.0.1",  # shared address space (RFC 6598)
        "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
        "240.0.0.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
        "not an address",
    ],
)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
)
def test_public_addresses_are_recognised(address: str) -> None:
    assert is_public_address(address)


def test_a_host_is_resolved_once_to_the_address_connected_to() -> None:
    """The checked address is the one used: an IP literal resolves to itself."""
    assert resolve("127.0.0.1", 443, LOOPBACK) == "127.0.0.1"
    with pytest.raises(FetchError, match="non-public address"):
        resolve("127.0.0.1", 443, FetchPolicy())


def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(FetchError, match="could not be resolved"):
        post_form("https://no-such-host.invalid/x", {}, LOOPBACK)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "https://user:pw@example.com/x",
        "https:///x",
        "https://example.com:99999/x",
        "not a url",
        "",
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError):
        fetch_json(url, FetchPolicy())
    with pytest.raises(FetchError):
        post_form(url, {}, LOOPBACK)
