"""OpenID Connect Core section 5.3 with RFC 6750 bearer errors."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_client, make_user
from tests.functional.test_token import tokens_for
from tests.oauth_helpers import basic


@pytest.fixture
def rp(app: Flask) -> tuple[Any, str]:
    make_user()
    return make_client()


def test_claims_by_scope(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp, scope="openid email")
    response = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 200
    claims = response.get_json()
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert "name" not in claims
    assert response.headers["Cache-Control"] == "no-store"


def test_post_with_header_and_with_body(client: FlaskClient, rp) -> None:
    access = tokens_for(client, rp)["access_token"]
    by_header = client.post("/userinfo", headers={"Authorization": f"Bearer {access}"})
    by_body = client.post("/userinfo", data={"access_token": access})
    assert by_header.status_code == by_body.status_code == 200
    assert by_header.get_json() == by_body.get_json()
    assert by_body.get_json()["name"] == "Alice Liddell"


def test_no_token_is_401_without_error_code(client: FlaskClient) -> None:
    response = client.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "error=" not in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer a.b.c", "Basic abc", "Bearer "])
def test_bad_tokens(client: FlaskClient, header: str) -> None:
    response = client.get("/userinfo", headers={"Authorization": header})
    assert response.status_code in (400, 401)
    assert "error=" in response.headers["WWW-Authenticate"]


def test_revoked_token_is_refused(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    client.post(
        "/oauth2/revoke",
        data={"token": body["access_token"]},
        headers=basic(rp[0].client_id, rp[1]),
    )
    response = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_without_openid_is_insufficient_scope(client: FlaskClient, app: Flask) -> None:
    make_user()
    rp = make_client(scope="openid api:read")
    body = tokens_for(client, rp, scope="api:read", nonce=None)
    response = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_header_and_body_together_is_invalid_request(client: FlaskClient, rp) -> None:
    access = tokens_for(client, rp)["access_token"]
    response = client.post(
        "/userinfo", headers={"Authorization": f"Bearer {access}"}, data={"access_token": access}
    )
    assert response.status_code == 400
