"""Security headers on every response."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from authserver.security.headers import CONTENT_SECURITY_POLICY


def assert_html_page_headers(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_the_csp_forbids_framing_and_inline_code() -> None:
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "base-uri 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "form-action" not in CONTENT_SECURITY_POLICY


def test_html_pages_get_every_header(client: FlaskClient) -> None:
    for path in ("/", "/login", "/logout"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        assert_html_page_headers(response.headers)


def test_html_error_pages_get_every_header(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert_html_page_headers(response.headers)


def test_static_files_are_not_sniffed_and_stay_cacheable(client: FlaskClient) -> None:
    response = client.get("/static/css/main.css")

    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_json_errors_are_not_sniffed(client: FlaskClient) -> None:
    response = client.get("/oauth2/no-such-endpoint")

    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_no_hsts_with_an_http_issuer(client: FlaskClient) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_hsts_with_an_https_issuer(app_factory: Any) -> None:
    https_app: Flask = app_factory(issuer="https://auth.example.com")

    response = https_app.test_client().get("/login", base_url="https://auth.example.com")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
