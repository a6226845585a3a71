"""The one redirect URI matching rule: exact, except a loopback URI's port (RFC 8252 7.3)."""

from __future__ import annotations

import pytest

from authserver.clients.redirect_uris import (
    is_loopback_redirect_uri,
    loopback_advice,
    redirect_uri_allowed,
)


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("https://rp.example.com/cb", "https://rp.example.com/cb"),
        ("com.example.app:/oauth2redirect", "com.example.app:/oauth2redirect"),
        # RFC 8252 section 7.3: any port at request time, including none, either way round.
        ("http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1:51004/cb"),
        ("http://127.0.0.1:8080/cb", "http://127.0.0.1/cb"),
        ("http://[::1]/cb", "http://[::1]:51004/cb"),
        ("http://[::1]:8080/cb?x=1", "http://[::1]:65535/cb?x=1"),
        ("http://127.0.0.1", "http://127.0.0.1:1"),
        ("http://127.0.0.1?q", "http://127.0.0.1:9?q"),
        # Section 8.3: localhost functions like the loopback literals.
        ("http://localhost:3000/cb", "http://localhost:4000/cb"),
    ],
)
def test_allowed(registered: str, requested: str) -> None:
    assert redirect_uri_allowed([registered], requested)


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        # The port varies only for http loopback URIs.
        ("https://127.0.0.1:8443/cb", "https://127.0.0.1:9443/cb"),
        ("https://rp.example.com/cb", "https://rp.example.com:8443/cb"),
        ("http://127.0.0.2/cb", "http://127.0.0.2:5000/cb"),
        ("http://127.0.0.1.example.com/cb", "http://127.0.0.1.example.com:5000/cb"),
        # Everything else still matches exactly.
        ("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb/"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5000/CB"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb?x=1"),
        ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:5000/cb?x=2"),
        ("http://127.0.0.1/cb", "http://[::1]:5000/cb"),
        ("http://[::1]/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1/cb", "http://localhost:5000/cb"),
        ("http://localhost/cb", "http://127.0.0.1/cb"),
        ("http://127.0.0.1/cb", "HTTP://127.0.0.1:5000/cb"),
        ("http://localhost/cb", "http://LOCALHOST:5000/cb"),
        # No user information, fragments or broken ports.
        ("http://127.0.0.1/cb", "http://user@127.0.0.1:5000/cb"),
        ("http://127.0.0.1/cb", "http://evil.example@127.0.0.1/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:5000/cb#frag"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:+80/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1:80:80/cb"),
        ("http://[::1]/cb", "http://[::1]x/cb"),
        ("http://[::1]/cb", "http://[::1/cb"),
        ("http://127.0.0.1/cb", "http://127.0.0.1\\@evil.example/cb"),
    ],
)
def test_refused(registered: str, requested: str) -> None:
    assert not redirect_uri_allowed([registered], requested)


def test_a_request_that_is_not_a_string_is_refused() -> None:
    assert not redirect_uri_allowed(["http://127.0.0.1/cb"], None)  # type: ignore[arg-type]


def test_loopback_redirect_uris() -> None:
    assert is_loopback_redirect_uri("http://127.0.0.1:5000/cb")
    assert is_loopback_redirect_uri("http://[::1]/cb")
    assert not is_loopback_redirect_uri("https://127.0.0.1/cb")


def test_localhost_draws_a_warning_and_the_loopback_literals_do_not() -> None:
    advice = loopback_advice(
        ["http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]/cb", "https://a.b/c"]
    )
    assert len(advice) == 1
    assert "http://localhost:3000/cb" in advice[0] and "8.3" in advice[0]
    assert "127.0.0.1" in advice[0]
