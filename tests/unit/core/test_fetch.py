"""core.fetch: the rules of every outgoing fetch, against real servers on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from authserver.core.fetch import FetchError, FetchPolicy, fetch_json, is_public_address, resolve
from tests.fetch_servers import certificate, json_document, serve

# Loopback servers are private addresses: these tests allow them, except where refused.
LOOPBACK = FetchPolicy(
    allow_private_addresses=True, https_only=False, connect_timeout=1.0, read_timeout=0.5
)
DOCUMENT = b'["https://app.example.com/cb"]'


def test_a_json_document_is_fetched() -> None:
    with serve(json_document(DOCUMENT)) as url:
        assert fetch_json(url + "/sector.json?v=1", LOOPBACK) == ["https://app.example.com/cb"]


def test_https_is_verified_against_the_configured_ca(tmp_path: Path) -> None:
    tls = certificate(tmp_path)
    with serve(json_document(DOCUMENT), tls=tls) as url:
        trusted = FetchPolicy(allow_private_addresses=True, ca_file=tls.cert_file)
        assert fetch_json(url, trusted) == ["https://app.example.com/cb"]
        # The system's CAs do not know the self-signed certificate.
        with pytest.raises(FetchError, match="could not be fetched"):
            fetch_json(url, FetchPolicy(allow_private_addresses=True))


def test_plain_http_is_refused_by_default() -> None:
    with serve(json_document(DOCUMENT)) as url, pytest.raises(FetchError, match="must use https"):
        fetch_json(url, FetchPolicy(allow_private_addresses=True))


def test_a_slow_server_times_out() -> None:
    def slow(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        time.sleep(2)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [DOCUMENT]

    with serve(slow) as url:
        started = time.monotonic()
        with pytest.raises(FetchError, match="did not answer in time"):
            fetch_json(url, LOOPBACK)
        assert time.monotonic() - started < 1.5


def test_a_trickling_server_is_cut_off_at_the_deadline() -> None:
    """Each byte arrives within the read timeout, the whole answer does not."""

    def trickle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        for _ in range(40):
            time.sleep(0.1)
            yield b" "

    with serve(trickle) as url:
        started = time.monotonic()
        with pytest.raises(FetchError, match="did not answer in time"):
            fetch_json(url, LOOPBACK)
        assert time.monotonic() - started < 3


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
        fetch_json(url, FetchPolicy(**{**LOOPBACK.__dict__, "max_bytes": 1000}))


def test_a_redirect_is_not_followed() -> None:
    moved = json_document(b"", "302 Found", Location="http://169.254.169.254/latest/meta-data")
    with serve(moved) as url, pytest.raises(FetchError, match="redirect, which is not followed"):
        fetch_json(url, LOOPBACK)


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
    with serve(json_document(DOCUMENT)) as url:
        refused = FetchPolicy(https_only=False)
        with pytest.raises(FetchError, match="non-public address"):
            fetch_json(url, refused)
        with pytest.raises(FetchError, match="non-public address"):
            fetch_json(url.replace("127.0.0.1", "localhost"), refused)


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
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_recognised(address: str) -> None:
    assert is_public_address(address)


def test_a_host_is_resolved_once_to_the_address_connected_to() -> None:
    """The checked address is the one used: an IP literal resolves to itself."""
    assert resolve("127.0.0.1", 443, LOOPBACK) == "127.0.0.1"
    with pytest.raises(FetchError, match="non-public address"):
        resolve("127.0.0.1", 443, FetchPolicy())


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "https://user:pw@example.com/x", "https:///x", "not a url", ""],
)
def test_malformed_or_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError):
        fetch_json(url, FetchPolicy())
