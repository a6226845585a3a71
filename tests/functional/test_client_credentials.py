"""RFC 6749 section 4.4: services calling APIs with their own credentials."""

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
from tests.factories import make_client
from tests.oauth_helpers import basic


@pytest.fixture
def service(app: Flask) -> tuple[Any, str]:
    return make_client(
        name="Billing",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="api:read api:write",
        resources=["https://api.example.com/"],
    )


def token(client: FlaskClient, service, **data: Any):
    return client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **data},
        headers=basic(service[0].client_id, service[1]),
    )


def test_service_gets_a_jwt_for_itself_and_nothing_is_stored(
    app: Flask, client: FlaskClient, service
) -> None:
    response = token(client, service, scope="api:read")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["scope"] == "api:read"
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    claims = jwt.decode(body["access_token"], keys).claims
    assert claims["sub"] == claims["client_id"] == service[0].client_id
    assert claims["aud"] == app.config["AUTHSERVER"].audience
    assert db.session.scalar(select(func.count()).select_from(Grant)) == 0
    assert db.session.scalar(select(func.count()).select_from(RefreshToken)) == 0


def test_without_scope_the_registered_scopes(client: FlaskClient, service) -> None:
    assert token(client, service).get_json()["scope"] == "api:read api:write"


def test_resource_indicator(client: FlaskClient, service) -> None:
    body = token(client, service, resource="https://api.example.com/").get_json()
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    assert jwt.decode(body["access_token"], keys).claims["aud"] == "https://api.example.com/"
    refused = token(client, service, resource="https://other.example.com/")
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_target"


def test_client_secret_post_works_for_services(client: FlaskClient, app: Flask) -> None:
    svc, secret = make_client(
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="api:read",
        auth_method="client_secret_post",
    )
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": svc.client_id,
            "client_secret": secret,
        },
    )
    assert response.status_code == 200


def test_revoked_client_credentials_token_introspects_inactive(
    client: FlaskClient, service
) -> None:
    access = token(client, service).get_json()["access_token"]
    auth = basic(service[0].client_id, service[1])
    assert client.post("/oauth2/introspect", data={"token": access}, headers=auth).get_json()[
        "active"
    ]
    assert client.post("/oauth2/revoke", data={"token": access}, headers=auth).status_code == 200
    assert client.post("/oauth2/introspect", data={"token": access}, headers=auth).get_json() == {
        "active": False
    }


def test_tokens_of_a_disabled_client_introspect_inactive(
    client: FlaskClient, service, app: Flask
) -> None:
    from authserver.clients.cache import invalidate_client_cache

    access = token(client, service).get_json()["access_token"]
    resource_server, rs_secret = make_client(
        name="RS", redirect_uris=[], grant_types=["client_credentials"], scope="x"
    )
    auth = basic(resource_server.client_id, rs_secret)
    assert client.post("/oauth2/introspect", data={"token": access}, headers=auth).get_json()[
        "active"
    ]
    service[0].is_active = False
    db.session.commit()
    invalidate_client_cache(service[0].client_id)
    assert client.post("/oauth2/introspect", data={"token": access}, headers=auth).get_json() == {
        "active": False
    }
