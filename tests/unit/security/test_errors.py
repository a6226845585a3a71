"""Errors: an HTML page for people, JSON for API clients, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from authserver.security.errors import CSRF_MESSAGE


def test_unknown_page_shows_the_html_error_page(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "Page not found" in body
    assert 'href="/"' in body


@pytest.mark.parametrize("path", ["/oauth2/no-such-endpoint", "/userinfo/x", "/.well-known/x"])
def test_unknown_api_path_answers_json(client: FlaskClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json is not None
    assert response.json["error"] == "not_found"
    assert response.json["error_description"]


def test_a_client_preferring_json_gets_json(client: FlaskClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "application/json"})

    assert response.status_code == 404
    assert response.json is not None and response.json["error"] == "not_found"


def test_a_browser_gets_html(client: FlaskClient) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

    response = client.get("/no-such-page", headers={"Accept": accept})

    assert response.mimetype == "text/html"


def test_wrong_method_keeps_the_allow_header(client: FlaskClient) -> None:
    response = client.delete("/login")

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "Method not allowed" in response.get_data(as_text=True)


def test_wrong_method_on_the_token_endpoint_is_json(client: FlaskClient) -> None:
    response = client.get("/oauth2/token")

    assert response.status_code == 405
    assert response.json is not None and response.json["error"] == "method_not_allowed"


def test_a_too_large_body_is_refused_with_the_error_page(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a" * 100_000, "password": "x"})

    assert response.status_code == 413
    assert "Request too large" in response.get_data(as_text=True)


def test_a_missing_csrf_token_shows_the_error_page_with_400(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a@example.com", "password": "x" * 8})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert CSRF_MESSAGE in response.get_data(as_text=True)
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_wrong_csrf_token_shows_the_error_page_with_400(client: FlaskClient) -> None:
    client.get("/login")

    response = client.post("/logout", data={"csrf_token": "forged"})

    assert response.status_code == 400
    assert CSRF_MESSAGE in response.get_data(as_text=True)


def test_an_abort_description_is_shown(app_factory: Any) -> None:
    from flask import abort

    app: Flask = app_factory()
    app.add_url_rule("/gone", "gone", lambda: abort(400, "That link has expired."))

    response = app.test_client().get("/gone")

    assert response.status_code == 400
    assert "That link has expired." in response.get_data(as_text=True)


def _boom() -> str:
    raise RuntimeError("secret internal detail")


def test_an_unexpected_exception_is_logged_and_shows_a_plain_500(
    app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app: Flask = app_factory()
    app.add_url_rule("/boom", "boom", _boom)

    with caplog.at_level(logging.ERROR, logger="authserver.security.errors"):
        response = app.test_client().get("/boom")

    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong" in body
    assert "secret internal detail" not in body
    assert "Traceback" not in body
    assert response.headers["X-Frame-Options"] == "DENY"
    assert any("secret internal detail" in str(r.exc_info) for r in caplog.records)


def test_an_unexpected_exception_on_an_api_path_is_a_json_server_error(app_factory: Any) -> None:
    app: Flask = app_factory()
    app.add_url_rule("/oauth2/boom", "oauth2_boom", _boom)

    response = app.test_client().get("/oauth2/boom")

    assert response.status_code == 500
    assert response.json == {
        "error": "server_error",
        "error_description": "An unexpected error happened on our side. Please try again later.",
    }
