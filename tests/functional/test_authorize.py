"""The authorization endpoint's refusals: where they go and what they say."""

from __future__ import annotations

import html
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import authorize_params, csrf_token, pkce_pair, query, sign_in


@pytest.fixture
def rp(app: Flask):
    make_user()
    client, _ = make_client()
    return client


def test_unknown_client_gets_an_error_page_not_a_redirect(client: FlaskClient) -> None:
    _, challenge = pkce_pair()
    response = client.get("/authorize", query_string=authorize_params("nope", challenge))
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example.com/callback",
        REDIRECT_URI + "/",
        REDIRECT_URI + "?x=1",
        REDIRECT_URI.upper(),
        "https://rp.example.com/callback#frag",
    ],
)
def test_redirect_uri_must_match_exactly(client: FlaskClient, rp, redirect_uri: str) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, redirect_uri=redirect_uri)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_missing_pkce_is_refused_with_a_redirect(app: Flask, client: FlaskClient, rp) -> None:
    params = authorize_params(rp.client_id, "x", code_challenge=None, code_challenge_method=None)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    got = query(response)
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert got["error"] == "invalid_request"
    assert got["state"] == "xyz-state"
    assert got["iss"] == app.config["AUTHSERVER"].issuer


@pytest.mark.parametrize("method", ["plain", None, "s256", "S512"])
def test_only_s256_is_accepted(client: FlaskClient, rp, method: str | None) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, code_challenge_method=method)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert query(response)["error"] == "invalid_request"


def test_pkce_is_required_of_confidential_clients_too(client: FlaskClient, rp) -> None:
    assert rp.token_endpoint_auth_method == "client_secret_basic"
    params = authorize_params(rp.client_id, "x", code_challenge=None, code_challenge_method=None)
    assert query(client.get("/authorize", query_string=params))["error"] == "invalid_request"


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
def test_only_the_code_response_type(client: FlaskClient, rp, response_type: str) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, response_type=response_type)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert query(response)["error"] == "unsupported_response_type"


def test_repeated_parameters_are_refused(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    params = [*authorize_params(rp.client_id, challenge).items(), ("state", "again")]
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_signed_out_person_is_sent_to_sign_in_and_back(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    response = client.get("/authorize", query_string=authorize_params(rp.client_id, challenge))
    assert response.status_code == 302
    login_url = response.headers["Location"]
    assert login_url.startswith("/login?")
    page = client.get(login_url)
    form = {"email": "alice@example.com", "password": PASSWORD, "csrf_token": csrf_token(page.text)}
    form["next"] = re.search(r'name="next"[^>]*value="([^"]*)"', page.text).group(1)
    back = client.post("/login", data={k: html.unescape(v) for k, v in form.items()})
    assert back.status_code == 302
    assert back.headers["Location"].startswith("/authorize?")
    assert client.get(back.headers["Location"]).status_code == 200  # the consent page


def test_prompt_none_signed_out_is_login_required(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, prompt="none")
    got = query(client.get("/authorize", query_string=params))
    assert got["error"] == "login_required"
    assert got["state"] == "xyz-state"


def test_prompt_none_without_consent_is_consent_required(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, prompt="none")
    assert query(client.get("/authorize", query_string=params))["error"] == "consent_required"


def test_prompt_none_with_other_values_is_invalid(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, prompt="none login")
    assert query(client.get("/authorize", query_string=params))["error"] == "invalid_request"


def test_consent_page_names_client_and_scopes(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    page = client.get("/authorize", query_string=authorize_params(rp.client_id, challenge))
    assert page.status_code == 200
    assert "Test RP" in page.text
    assert "Allow" in page.text and "Deny" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_deny_returns_access_denied(client: FlaskClient, rp) -> None:
    from tests.oauth_helpers import consent

    sign_in(client)
    _, challenge = pkce_pair()
    page = client.get("/authorize", query_string=authorize_params(rp.client_id, challenge))
    got = query(consent(client, page, "deny"))
    assert got["error"] == "access_denied"
    assert got["state"] == "xyz-state"
    assert "iss" in got


def test_consent_decision_needs_csrf_token(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    data = authorize_params(rp.client_id, challenge, decision="allow")
    response = client.post("/authorize/decision", data=data)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_consent_is_remembered_per_scope_set(client: FlaskClient, rp) -> None:
    from tests.oauth_helpers import consent

    sign_in(client)
    _, challenge = pkce_pair()
    narrow = authorize_params(rp.client_id, challenge, scope="openid email")
    consent(client, client.get("/authorize", query_string=narrow))
    again = client.get("/authorize", query_string=narrow)
    assert again.status_code == 302 and "code" in query(again)
    wider = authorize_params(rp.client_id, challenge, scope="openid email profile")
    assert client.get("/authorize", query_string=wider).status_code == 200
    forced = authorize_params(rp.client_id, challenge, scope="openid email", prompt="consent")
    assert client.get("/authorize", query_string=forced).status_code == 200


def test_first_party_client_skips_consent(client: FlaskClient, app: Flask) -> None:
    make_user()
    rp, _ = make_client(skip_consent=True)
    sign_in(client)
    _, challenge = pkce_pair()
    response = client.get("/authorize", query_string=authorize_params(rp.client_id, challenge))
    assert response.status_code == 302
    assert "code" in query(response)


def test_request_objects_are_refused_by_name(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    got = query(
        client.get(
            "/authorize", query_string=authorize_params(rp.client_id, challenge, request="e30.e30.")
        )
    )
    assert got["error"] == "request_not_supported"
    params = authorize_params(rp.client_id, challenge, request_uri="https://rp.example.com/r")
    assert (
        query(client.get("/authorize", query_string=params))["error"] == "request_uri_not_supported"
    )


def test_unregistered_resource_is_invalid_target(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, resource="https://api.example.com/")
    assert query(client.get("/authorize", query_string=params))["error"] == "invalid_target"


def test_scopes_beyond_registration_are_dropped(client: FlaskClient, rp) -> None:
    from tests.oauth_helpers import consent

    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, scope="openid admin email")
    page = client.get("/authorize", query_string=params)
    assert page.status_code == 200
    got = query(consent(client, page))
    assert "code" in got
