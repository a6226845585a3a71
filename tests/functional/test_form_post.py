"""`response_mode=form_post` (OAuth 2.0 Form Post Response Mode): codes and errors reach the
client as a form the browser posts at once, with `state` and `iss` (RFC 9207)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authserver.oauth.response_modes import form_action_source
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.functional.test_reauthentication import sign_in_through
from tests.oauth_helpers import (
    authorize_params,
    consent,
    exchange,
    form_post,
    pkce_pair,
    query,
    sign_in,
)

ISSUER = "http://127.0.0.1:5000"
SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.S)


def directives(response: TestResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    parts = (part.split(None, 1) for part in policy.split(";") if part.strip())
    return {name: value for name, value in parts}


def authorize(browser: FlaskClient, client_id: str, challenge: str, **extra: Any) -> TestResponse:
    params = authorize_params(client_id, challenge, response_mode="form_post", **extra)
    return browser.get("/authorize", query_string=params)


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> tuple[FlaskClient, str, str | None]:
    make_user()
    rp, secret = make_client()
    sign_in(client)
    return client, rp.client_id, secret


def test_the_code_is_posted_to_the_redirect_uri_with_state_and_iss(
    signed_in: tuple[FlaskClient, str, str | None],
) -> None:
    browser, client_id, secret = signed_in
    verifier, challenge = pkce_pair()
    page = consent(browser, authorize(browser, client_id, challenge))

    action, fields = form_post(page)
    assert action == REDIRECT_URI
    assert set(fields) == {"code", "state", "iss"}
    assert fields["state"] == "xyz-state" and fields["iss"] == ISSUER
    # Section 2: the form is sent once; nothing stores it, and none of our tokens is in it.
    assert page.headers["Cache-Control"] == "no-store"
    assert "csrf_token" not in page.text
    # Without JavaScript a person can still send it on.
    assert re.search(r"<noscript>.*<button type=\"submit\"", page.text, re.S)
    tokens = exchange(browser, client_id, secret, fields["code"], verifier)
    assert tokens.status_code == 200 and tokens.get_json()["id_token"]


def test_the_page_runs_exactly_its_own_script_and_posts_only_to_the_redirect_uri(
    signed_in: tuple[FlaskClient, str, str | None],
) -> None:
    browser, client_id, _ = signed_in
    _, challenge = pkce_pair()
    page = consent(browser, authorize(browser, client_id, challenge))

    scripts = SCRIPT_RE.findall(page.text)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = directives(page)
    assert policy["script-src"] == f"'sha256-{digest}'"
    assert policy["form-action"] == "https://rp.example.com/callback"
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"


def test_parameters_are_escaped_in_the_form(
    signed_in: tuple[FlaskClient, str, str | None],
) -> None:
    browser, client_id, _ = signed_in
    _, challenge = pkce_pair()
    state = '"><script>alert(1)</script>'
    page = consent(browser, authorize(browser, client_id, challenge, state=state))
    assert form_post(page)[1]["state"] == state
    assert len(SCRIPT_RE.findall(page.text)) == 1


def test_prompt_none_errors_are_posted_too(app: Flask, client: FlaskClient) -> None:
    rp, _ = make_client()
    _, challenge = pkce_pair()
    page = authorize(client, rp.client_id, challenge, prompt="none")
    action, fields = form_post(page)
    assert action == REDIRECT_URI
    assert fields["error"] == "login_required"
    assert fields["state"] == "xyz-state" and fields["iss"] == ISSUER
    assert "code" not in fields


def test_a_denied_consent_is_posted(signed_in: tuple[FlaskClient, str, str | None]) -> None:
    browser, client_id, _ = signed_in
    _, challenge = pkce_pair()
    page = consent(browser, authorize(browser, client_id, challenge), decision="deny")
    fields = form_post(page)[1]
    assert fields["error"] == "access_denied" and fields["state"] == "xyz-state"
    assert fields["iss"] == ISSUER


def test_errors_authlib_finds_are_posted(signed_in: tuple[FlaskClient, str, str | None]) -> None:
    """PKCE is missing: found while validating the request, after the redirect_uri."""
    browser, client_id, _ = signed_in
    page = authorize(browser, client_id, "", code_challenge=None, code_challenge_method=None)
    fields = form_post(page)[1]
    assert fields["error"] == "invalid_request" and fields["iss"] == ISSUER


def test_errors_after_sign_in_are_posted(app: Flask, client: FlaskClient) -> None:
    """The sign-in page comes back to the request: its later errors go by its mode."""
    make_user()
    rp, _ = make_client(scope="openid org:acme")
    _, challenge = pkce_pair()
    response = authorize(client, rp.client_id, challenge, scope="openid", organization="acme")
    fields = form_post(sign_in_through(client, response))[1]
    assert fields["error"] == "access_denied" and fields["state"] == "xyz-state"


def test_fragment_and_unknown_modes_are_refused_by_the_default_mode(
    signed_in: tuple[FlaskClient, str, str | None],
) -> None:
    browser, client_id, _ = signed_in
    _, challenge = pkce_pair()
    for mode in ("fragment", "form_post.jwt", "nonsense"):
        params = authorize_params(client_id, challenge, response_mode=mode)
        response = browser.get("/authorize", query_string=params)
        assert response.status_code == 302, mode
        assert query(response)["error"] == "invalid_request"


def test_an_unregistered_redirect_uri_gets_the_error_page_not_a_form(
    signed_in: tuple[FlaskClient, str, str | None],
) -> None:
    browser, client_id, _ = signed_in
    _, challenge = pkce_pair()
    page = authorize(browser, client_id, challenge, redirect_uri="https://evil.example/callback")
    assert page.status_code == 400
    assert "evil.example" not in page.headers.get("Content-Security-Policy", "")
    assert 'action="https://evil.example' not in page.text


@pytest.mark.parametrize(
    ("redirect_uri", "source"),
    [
        ("https://rp.example.com/callback?x=1", "https://rp.example.com/callback"),
        ("https://RP.example.com:8443/cb", "https://rp.example.com:8443/cb"),
        ("http://127.0.0.1:5000/a;b,c", "http://127.0.0.1:5000/a%3Bb%2Cc"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000/"),
        # CSP has no IPv6 literals: the scheme only; the form still has its one action.
        ("http://[::1]:5000/cb", "http:"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
    ],
)
def test_the_form_action_source_names_the_redirect_uri(redirect_uri: str, source: str) -> None:
    assert form_action_source(redirect_uri) == source
