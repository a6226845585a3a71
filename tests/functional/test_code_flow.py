"""The authorization code flow end to end through the test client."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import make_client, make_user
from tests.oauth_helpers import exchange, get_code, pkce_pair, sign_in


def jwks(browser: FlaskClient) -> KeySet:
    return KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())


def test_signed_in_person_gets_code_then_tokens(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    rp, secret = make_client()
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, params = get_code(client, rp.client_id, challenge)
    assert params["state"] == "xyz-state"
    assert params["iss"] == app.config["AUTHSERVER"].issuer

    response = exchange(client, rp.client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"]

    keys = jwks(client)
    access = jwt.decode(body["access_token"], keys)
    assert access.header["typ"] == "at+jwt"
    assert access.claims["sub"] == user.sub
    assert access.claims["client_id"] == rp.client_id
    id_token = jwt.decode(body["id_token"], keys)
    assert id_token.header["alg"] == "RS256"
    assert id_token.header["kid"]
    assert id_token.claims["aud"] == rp.client_id
    assert id_token.claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_token.claims["sub"] == user.sub
    assert "at_hash" in id_token.claims
