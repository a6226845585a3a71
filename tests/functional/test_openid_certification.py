"""What the OpenID Foundation's Basic OP and Config OP certification plans check, one test each.

The conformance suite plays a relying party against the provider; these tests
play the same relying party through the Flask test client, test by test, in
the order of the plans (oidcc-basic-certification-test-plan, oidcc-config-...).
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from werkzeug.test import TestResponse

from authserver.clients.models import Client
from authserver.extensions import db
from authserver.oauth.models import AuthorizationCode
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import (
    authorize_params,
    basic,
    consent,
    csrf_token,
    exchange,
    get_code,
    pkce_pair,
    query,
    sign_in,
)

NONCE = "n-0S6_WzA2Mj"
# Standard parameters an OP must accept even when it does nothing with them.
ACCEPTED_HINTS = {
    "login_hint": "alice@example.com",
    "ui_locales": "en-GB fr",
    "claims_locales": "en de",
    "acr_values": "urn:mace:incommon:iap:silver",
    "display": "page",
}


@pytest.fixture
def rp(app: Flask) -> tuple[Client, str]:
    """Alice and a confidential relying party using client_secret_basic."""
    make_user()
    client, secret = make_client()
    assert secret is not None
    return client, secret


def keys(browser: FlaskClient) -> KeySet:
    return KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())


def id_token_of(browser: FlaskClient, token: dict[str, Any]) -> jwt.Token:
    """The id_token of a token response, with its signature checked against the JWKS."""
    return jwt.decode(token["id_token"], keys(browser), algorithms=["RS256", "ES256"])


def tokens(
    browser: FlaskClient, rp: tuple[Client, str], **extra: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    """Authorize (signing in first), exchange the code: (token response, authorization response)."""
    client, secret = rp
    verifier, challenge = pkce_pair()
    code, params = get_code(browser, client.client_id, challenge, **extra)
    response = exchange(browser, client.client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    return response.get_json(), params


def flow_finishes(browser: FlaskClient, response: TestResponse) -> dict[str, str]:
    """Follow a sign-in redirect as the person: sign in again, then return the client's redirect."""
    assert response.status_code == 302, response.text
    login_url = response.headers["Location"]
    assert login_url.startswith("/login?"), login_url
    page = browser.get(login_url)
    assert page.status_code == 200 and 'name="password"' in page.text, "no sign-in form shown"
    next_url = re.search(r'name="next" value="([^"]*)"', page.text)
    assert next_url
    form = {
        "email": "alice@example.com",
        "password": PASSWORD,
        "csrf_token": csrf_token(page.text),
        "next": html.unescape(next_url.group(1)),
    }
    back = browser.post("/login", data=form)
    assert back.status_code == 302 and back.headers["Location"].startswith("/authorize?")
    done = browser.get(back.headers["Location"])
    if done.status_code == 200:
        done = consent(browser, done)
    assert done.status_code == 302 and done.headers["Location"].startswith(REDIRECT_URI + "?")
    return query(done)


def age_sign_in(seconds: int) -> int:
    """Pretend every sign-in happened `seconds` earlier; returns the new auth_time."""
    rows = db.session.scalars(select(LoginSession)).all()
    assert rows
    for row in rows:
        row.auth_time = row.auth_time - timedelta(seconds=seconds)
    db.session.commit()
    return int(rows[-1].auth_time.timestamp())


def introspect(browser: FlaskClient, rp: tuple[Client, str], token: str) -> dict[str, Any]:
    response = browser.post(
        "/oauth2/introspect", data={"token": token}, headers=basic(rp[0].client_id, rp[1])
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    return body


def refresh(browser: FlaskClient, rp: tuple[Client, str], refresh_token: str) -> TestResponse:
    return browser.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=basic(rp[0].client_id, rp[1]),
    )


# Code flow and client authentication.


def test_code_flow_with_client_secret_basic(client: FlaskClient, rp: tuple[Client, str]) -> None:
    sign_in(client)
    token, params = tokens(client, rp)
    assert params["state"] == "xyz-state"
    claims = id_token_of(client, token).claims
    assert claims["aud"] == rp[0].client_id
    assert claims["nonce"] == NONCE


def test_code_flow_with_client_secret_post(client: FlaskClient, app: Flask) -> None:
    make_user()
    rp, secret = make_client(auth_method="client_secret_post")
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp.client_id, challenge)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        "client_id": rp.client_id,
        "client_secret": secret,
    }
    response = client.post("/oauth2/token", data=data)
    assert response.status_code == 200, response.text
    assert id_token_of(client, response.get_json()).claims["aud"] == rp.client_id


# UserInfo: GET with the header, POST with the header, POST with a form body.


@pytest.mark.parametrize("how", ["get-header", "post-header", "post-body"])
def test_userinfo(client: FlaskClient, rp: tuple[Client, str], how: str) -> None:
    sign_in(client)
    token, _ = tokens(client, rp)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    if how == "get-header":
        response = client.get("/userinfo", headers=bearer)
    elif how == "post-header":
        response = client.post("/userinfo", headers=bearer)
    else:
        response = client.post("/userinfo", data={"access_token": token["access_token"]})
    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["sub"] == id_token_of(client, token).claims["sub"]
    assert body["name"] == "Alice Liddell"
    assert body["email"] == "alice@example.com"


# Nonce.


def test_request_with_nonce_gets_it_back_in_the_id_token(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    token, _ = tokens(client, rp, nonce="a-nonce-of-the-rp")
    assert id_token_of(client, token).claims["nonce"] == "a-nonce-of-the-rp"


def test_request_without_nonce_is_accepted_for_the_code_flow(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    token, _ = tokens(client, rp, nonce=None)
    assert "nonce" not in id_token_of(client, token).claims


# Scopes.


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        ("openid", {"sub"}, {"name", "email", "email_verified"}),
        ("openid profile", {"sub", "name", "updated_at"}, {"email", "email_verified"}),
        ("openid email", {"sub", "email", "email_verified"}, {"name"}),
        ("openid profile email", {"sub", "name", "email", "email_verified"}, set()),
    ],
)
def test_each_standard_scope_releases_its_claims_in_userinfo(
    client: FlaskClient, rp: tuple[Client, str], scope: str, present: set[str], absent: set[str]
) -> None:
    sign_in(client)
    token, _ = tokens(client, rp, scope=scope)
    assert token["scope"] == scope
    body = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).get_json()
    assert present <= set(body), body
    assert not absent & set(body), body
    if "email" in present:
        assert body["email"] == "alice@example.com" and body["email_verified"] is True


def test_offline_access_scope_issues_a_refresh_token(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    without, _ = tokens(client, rp, scope="openid")
    assert "refresh_token" not in without
    with_offline, _ = tokens(client, rp, scope="openid offline_access")
    assert refresh(client, rp, with_offline["refresh_token"]).status_code == 200


# prompt and max_age.


def test_prompt_login_forces_sign_in_even_when_signed_in(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    tokens(client, rp)  # consent given once
    earlier = age_sign_in(30)
    _, challenge = pkce_pair()
    params = authorize_params(rp[0].client_id, challenge, prompt="login")
    response = client.get("/authorize", query_string=params)
    assert "reauth=1" in response.headers.get("Location", ""), "no sign-in page for prompt=login"
    got = flow_finishes(client, response)
    assert got["state"] == "xyz-state" and "code" in got
    row = db.session.scalar(select(AuthorizationCode).order_by(AuthorizationCode.id.desc()))
    assert row is not None and int(row.auth_time.timestamp()) > earlier


def test_prompt_none_signed_in_with_consent_issues_a_code_without_ui(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    tokens(client, rp)
    _, challenge = pkce_pair()
    response = client.get(
        "/authorize", query_string=authorize_params(rp[0].client_id, challenge, prompt="none")
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    got = query(response)
    assert "code" in got and got["state"] == "xyz-state"


def test_prompt_none_signed_out_is_login_required_with_state_and_iss(
    app: Flask, client: FlaskClient, rp: tuple[Client, str]
) -> None:
    _, challenge = pkce_pair()
    response = client.get(
        "/authorize", query_string=authorize_params(rp[0].client_id, challenge, prompt="none")
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    got = query(response)
    assert got["error"] == "login_required"
    assert got["state"] == "xyz-state"
    assert got["iss"] == app.config["AUTHSERVER"].issuer


def test_max_age_1_forces_sign_in_after_more_than_a_second(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    tokens(client, rp)
    earlier = age_sign_in(5)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp[0].client_id, challenge, max_age="1")
    response = client.get("/authorize", query_string=params)
    assert response.headers.get("Location", "").startswith("/login?"), "max_age=1 was ignored"
    got = flow_finishes(client, response)
    exchanged = exchange(client, rp[0].client_id, rp[1], got["code"], verifier)
    assert exchanged.status_code == 200, exchanged.text
    # Core section 3.1.2.1: with max_age the id_token must carry auth_time.
    assert id_token_of(client, exchanged.get_json()).claims["auth_time"] > earlier


# Parameters an OP must accept.


def test_unknown_parameters_are_ignored(client: FlaskClient, rp: tuple[Client, str]) -> None:
    sign_in(client)
    token, params = tokens(client, rp, extra="foobar", **{"x-vendor": "1", "claims_foo": "{"})
    assert "code" in params
    assert id_token_of(client, token).claims["nonce"] == NONCE


def test_id_token_hint_and_other_optional_parameters_are_accepted(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    first, _ = tokens(client, rp)
    token, params = tokens(client, rp, id_token_hint=first["id_token"], **ACCEPTED_HINTS)
    assert params["state"] == "xyz-state"
    assert id_token_of(client, token).claims["sub"] == id_token_of(client, first).claims["sub"]


def test_login_hint_prefills_the_sign_in_page(client: FlaskClient, rp: tuple[Client, str]) -> None:
    _, challenge = pkce_pair()
    response = client.get(
        "/authorize", query_string=authorize_params(rp[0].client_id, challenge, **ACCEPTED_HINTS)
    )
    page = client.get(response.headers["Location"])
    assert 'value="alice@example.com"' in page.text


# Authorization codes are single-use.


def test_code_reuse_is_refused_and_revokes_what_the_code_issued(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    first = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert first.status_code == 200
    token = first.get_json()
    assert introspect(client, rp, token["access_token"])["active"] is True

    again = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, token["access_token"]) == {"active": False}
    stale = refresh(client, rp, token["refresh_token"])
    assert stale.status_code == 400 and stale.get_json()["error"] == "invalid_grant"


def test_code_reuse_is_refused_after_30_seconds(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    first = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert first.status_code == 200
    row = db.session.scalar(select(AuthorizationCode))
    assert row is not None and row.used_at is not None
    # The code was redeemed 31 s ago and is not expired yet (60 s lifetime).
    for name in ("created_at", "expires_at", "used_at"):
        setattr(row, name, getattr(row, name) - timedelta(seconds=31))
    db.session.commit()

    again = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, first.get_json()["access_token"]) == {"active": False}


# Redirect URIs and the authorization endpoint itself.


def test_unregistered_redirect_uri_gets_an_error_page_and_no_redirect(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(
        rp[0].client_id, challenge, redirect_uri="https://attacker.example.com/callback"
    )
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers
    # Named on the page at most as text, never as a link or a form target.
    assert 'href="https://attacker.example.com' not in response.text
    assert 'action="https://attacker.example.com' not in response.text


def test_post_to_the_authorization_endpoint(client: FlaskClient, rp: tuple[Client, str]) -> None:
    sign_in(client)
    tokens(client, rp)  # consent given once
    verifier, challenge = pkce_pair()
    response = client.post("/authorize", data=authorize_params(rp[0].client_id, challenge))
    assert response.status_code == 302
    got = query(response)
    assert got["state"] == "xyz-state"
    exchanged = exchange(client, rp[0].client_id, rp[1], got["code"], verifier)
    assert exchanged.status_code == 200, exchanged.text


def test_post_to_the_authorization_endpoint_shows_consent_first(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    page = client.post("/authorize", data=authorize_params(rp[0].client_id, challenge))
    assert page.status_code == 200 and 'value="allow"' in page.text
    assert "code" in query(consent(client, page))


@pytest.mark.parametrize(
    ("parameter", "value", "error"),
    [
        ("request", "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6InN0YXRlIn0.", "request_not_supported"),
        ("request_uri", "https://rp.example.com/request.jwt", "request_uri_not_supported"),
    ],
)
def test_request_objects_are_refused_with_their_own_error(
    app: Flask, client: FlaskClient, rp: tuple[Client, str], parameter: str, value: str, error: str
) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp[0].client_id, challenge, **{parameter: value})
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    got = query(response)
    assert got["error"] == error
    assert got["state"] == "xyz-state"
    assert got["iss"] == app.config["AUTHSERVER"].issuer


# The claims parameter (Core section 5.5).


def test_claims_parameter_asks_for_name_in_userinfo(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    token, _ = tokens(client, rp, scope="openid profile", claims=claims)
    body = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).get_json()
    assert body["name"] == "Alice Liddell"
    assert "email" not in body
    assert "name" not in id_token_of(client, token).claims


def test_claims_parameter_asks_for_email_in_the_id_token(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    claims = json.dumps({"id_token": {"email": {"essential": True}}})
    token, _ = tokens(client, rp, scope="openid email", claims=claims)
    assert id_token_of(client, token).claims["email"] == "alice@example.com"


def test_claims_parameter_releases_nothing_the_scope_does_not_cover(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    """Section 5.5 asks; consent (the scope) decides: an essential claim may go unreturned."""
    sign_in(client)
    claims = json.dumps(
        {"id_token": {"email": {"essential": True}}, "userinfo": {"name": {"essential": True}}}
    )
    token, _ = tokens(client, rp, scope="openid", claims=claims)
    assert "email" not in id_token_of(client, token).claims
    body = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
    ).get_json()
    assert set(body) == {"sub"}


# Signing.


def test_id_tokens_are_never_unsigned_and_always_name_their_key(
    client: FlaskClient, rp: tuple[Client, str]
) -> None:
    sign_in(client)
    token, _ = tokens(client, rp)
    refreshed = refresh(client, rp, token["refresh_token"])
    assert refreshed.status_code == 200
    published = {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}
    for id_token in (token["id_token"], refreshed.get_json()["id_token"]):
        header = jws.extract_compact(id_token.encode()).protected
        assert header["alg"] != "none" and header["alg"] == "RS256"
        assert header["kid"] in published


def test_rs256_is_an_advertised_id_token_signing_alg(client: FlaskClient) -> None:
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert "none" not in meta["id_token_signing_alg_values_supported"]


def test_client_registered_for_es256_gets_es256_id_tokens(client: FlaskClient, app: Flask) -> None:
    make_user()
    rp, secret = make_client(id_token_signed_response_alg="ES256")
    assert secret is not None
    sign_in(client)
    token, _ = tokens(client, (rp, secret))
    decoded = id_token_of(client, token)
    assert decoded.header["alg"] == "ES256"
    assert decoded.header["kid"]
    assert decoded.claims["aud"] == rp.client_id


# Config OP: discovery and keys.


def test_discovery_issuer_is_the_configured_issuer_and_jwks_uri_serves_keys(
    app: Flask, client: FlaskClient
) -> None:
    issuer = app.config["AUTHSERVER"].issuer
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == issuer
    assert meta["jwks_uri"].startswith(issuer + "/")
    jwks = client.get(meta["jwks_uri"][len(issuer) :]).get_json()
    algs = {key["alg"] for key in jwks["keys"]}
    assert {"RS256", "ES256"} <= algs
    for key in jwks["keys"]:
        assert key["kid"] and key["use"] == "sig"
        assert "d" not in key and "p" not in key
