"""The token endpoint: one-time codes, PKCE, client authentication, rotation and reuse."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from authserver.extensions import db
from authserver.oauth.models import Grant, RefreshToken
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in


@pytest.fixture
def rp(app: Flask) -> tuple[Any, str]:
    make_user()
    return make_client()


def tokens_for(client: FlaskClient, rp: tuple[Any, str], **extra: Any) -> dict[str, Any]:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge, **extra)
    response = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert response.status_code == 200, response.text
    return response.get_json()


def refresh(client: FlaskClient, rp: tuple[Any, str], token: str, **extra: Any):
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return client.post("/oauth2/token", data=data, headers=basic(rp[0].client_id, rp[1]))


def introspect(client: FlaskClient, rp: tuple[Any, str], token: str) -> dict[str, Any]:
    response = client.post(
        "/oauth2/introspect", data={"token": token}, headers=basic(rp[0].client_id, rp[1])
    )
    assert response.status_code == 200, response.text
    return response.get_json()


def test_code_is_one_time_and_replay_revokes_its_tokens(client: FlaskClient, rp) -> None:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    first = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert first.status_code == 200
    tokens = first.get_json()
    assert introspect(client, rp, tokens["access_token"])["active"] is True

    replay = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert replay.status_code == 400
    assert replay.get_json()["error"] == "invalid_grant"
    assert introspect(client, rp, tokens["access_token"]) == {"active": False}
    assert refresh(client, rp, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_code_stored_only_as_a_hash(client: FlaskClient, rp) -> None:
    from authserver.oauth.models import AuthorizationCode

    sign_in(client)
    _, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    stored = db.session.scalars(select(AuthorizationCode.code_hash)).all()
    assert code not in stored and len(stored) == 1 and len(stored[0]) == 64


def test_expired_code_is_refused(app: Flask, client: FlaskClient, rp) -> None:
    from datetime import timedelta

    from authserver.oauth.models import AuthorizationCode

    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    row = db.session.scalars(select(AuthorizationCode)).one()
    row.expires_at = row.expires_at - timedelta(seconds=61)
    db.session.commit()
    response = exchange(client, rp[0].client_id, rp[1], code, verifier)
    assert response.get_json()["error"] == "invalid_grant"


def test_wrong_code_verifier_is_invalid_grant(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    other, _ = pkce_pair()
    response = exchange(client, rp[0].client_id, rp[1], code, other)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_missing_code_verifier_is_refused(client: FlaskClient, rp) -> None:
    sign_in(client)
    _, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    response = client.post("/oauth2/token", data=data, headers=basic(rp[0].client_id, rp[1]))
    assert response.get_json()["error"] == "invalid_request"


def test_redirect_uri_must_repeat_the_authorization_request(client: FlaskClient, rp) -> None:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    response = exchange(
        client, rp[0].client_id, rp[1], code, verifier, redirect_uri="https://rp.example.com/other"
    )
    assert response.get_json()["error"] == "invalid_grant"


def test_code_of_another_client_is_refused(client: FlaskClient, rp) -> None:
    other, other_secret = make_client(name="Other")
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    response = exchange(client, other.client_id, other_secret, code, verifier)
    assert response.get_json()["error"] == "invalid_grant"


def test_wrong_secret_is_invalid_client_401(client: FlaskClient, rp) -> None:
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    response = client.post("/oauth2/token", data=data, headers=basic(rp[0].client_id, "wrong"))
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_client_must_use_its_registered_auth_method(client: FlaskClient, rp) -> None:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": "x",
        "client_id": rp[0].client_id,
        "client_secret": rp[1],
    }
    response = client.post("/oauth2/token", data=data)
    assert response.get_json()["error"] == "invalid_client"


def test_client_secret_post_clients(client: FlaskClient, app: Flask) -> None:
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
    assert client.post("/oauth2/token", data=data).status_code == 200


def test_public_client_with_pkce_gets_rotating_refresh_tokens(client: FlaskClient, app) -> None:
    make_user()
    rp, secret = make_client(auth_method="none")
    assert secret is None
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp.client_id, challenge)
    body = exchange(client, rp.client_id, None, code, verifier).get_json()
    assert body["refresh_token"]
    data = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": rp.client_id,
    }
    again = client.post("/oauth2/token", data=data)
    assert again.status_code == 200
    assert again.get_json()["refresh_token"] != body["refresh_token"]
    assert client.post("/oauth2/token", data=data).get_json()["error"] == "invalid_grant"


def test_refresh_rotates_and_reuse_revokes_the_family(client: FlaskClient, rp) -> None:
    first = tokens_for(client, rp)
    second = refresh(client, rp, first["refresh_token"])
    assert second.status_code == 200
    assert second.headers["Cache-Control"] == "no-store"
    second_tokens = second.get_json()
    assert second_tokens["refresh_token"] != first["refresh_token"]
    assert "id_token" in second_tokens

    reuse = refresh(client, rp, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.get_json()["error"] == "invalid_grant"
    # The whole family is gone: the successor and its access token too.
    assert (
        refresh(client, rp, second_tokens["refresh_token"]).get_json()["error"] == "invalid_grant"
    )
    assert introspect(client, rp, second_tokens["access_token"]) == {"active": False}
    assert (
        db.session.scalar(select(func.count()).select_from(Grant).where(Grant.revoked_at.is_(None)))
        == 0
    )


def test_refresh_may_narrow_but_not_widen_scope(client: FlaskClient, rp) -> None:
    first = tokens_for(client, rp)
    narrowed = refresh(client, rp, first["refresh_token"], scope="openid email")
    assert narrowed.get_json()["scope"] == "openid email"
    widened = refresh(client, rp, narrowed.get_json()["refresh_token"], scope="openid admin")
    assert widened.get_json()["error"] == "invalid_scope"


def test_refresh_token_of_another_client_is_refused(client: FlaskClient, rp) -> None:
    other = make_client(name="Other")
    first = tokens_for(client, rp)
    response = refresh(client, other, first["refresh_token"])
    assert response.get_json()["error"] == "invalid_grant"


def test_refresh_tokens_stored_only_as_hashes(client: FlaskClient, rp) -> None:
    first = tokens_for(client, rp)
    stored = db.session.scalars(select(RefreshToken.token_hash)).all()
    assert first["refresh_token"] not in stored


def test_no_refresh_token_without_offline_access(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp, scope="openid email")
    assert "refresh_token" not in body
    assert "id_token" in body


def test_no_refresh_token_for_clients_without_the_grant(client: FlaskClient, app) -> None:
    make_user()
    rp = make_client(grant_types=["authorization_code"])
    body = tokens_for(client, rp)
    assert "refresh_token" not in body


def test_non_openid_request_gets_a_refresh_token_but_no_id_token(client: FlaskClient, app) -> None:
    make_user()
    rp = make_client(scope="api:read openid")
    body = tokens_for(client, rp, scope="api:read", nonce=None)
    assert "refresh_token" in body
    assert "id_token" not in body
    assert body["scope"] == "api:read"


def test_scopes_the_client_may_not_have_are_not_granted(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp, scope="openid admin email")
    assert body["scope"] == "openid email"


def test_access_token_is_an_rfc9068_jwt(app: Flask, client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    token = jwt.decode(body["access_token"], keys)
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "ES256"
    claims = token.claims
    config = app.config["AUTHSERVER"]
    assert claims["iss"] == config.issuer
    assert claims["aud"] == config.audience
    assert claims["exp"] - claims["iat"] == config.access_token_ttl == body["expires_in"] == 900
    assert {"sub", "client_id", "jti", "scope", "auth_time"} <= set(claims)


def test_rs256_access_tokens_when_configured(app_factory) -> None:
    app = app_factory(access_token_alg="RS256")
    with app.app_context():
        client = app.test_client()
        make_user()
        rp = make_client()
        body = tokens_for(client, rp)
        assert (
            jwt.decode(
                body["access_token"],
                KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json()),
            ).header["alg"]
            == "RS256"
        )


def test_resource_indicator_sets_the_audience(client: FlaskClient, app: Flask) -> None:
    make_user()
    rp = make_client(resources=["https://api.example.com/"])
    body = tokens_for(client, rp, resource="https://api.example.com/")
    claims = jwt.decode(
        body["access_token"], KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    ).claims
    assert claims["aud"] == "https://api.example.com/"


def test_unsupported_grant_type(client: FlaskClient, rp) -> None:
    response = client.post(
        "/oauth2/token", data={"grant_type": "password"}, headers=basic(rp[0].client_id, rp[1])
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"
    assert response.headers["Cache-Control"] == "no-store"


def test_unauthorized_client_for_a_grant_it_lacks(client: FlaskClient, rp) -> None:
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(rp[0].client_id, rp[1]),
    )
    assert response.get_json()["error"] == "unauthorized_client"


def test_transport_security_follows_the_issuer_not_the_socket(app_factory) -> None:
    """Behind a TLS proxy the WSGI URL is http; the https issuer decides."""
    app = app_factory(issuer="https://id.example.com")
    with app.app_context():
        client = app.test_client()
        svc, secret = make_client(redirect_uris=[], grant_types=["client_credentials"], scope="a")
        response = client.post(
            "http://10.0.0.5/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=basic(svc.client_id, secret),
        )
        assert response.status_code == 200, response.text
