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
        name="RS",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="x",
        is_resource_server=True,
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


def _introspect(client: FlaskClient, token_value: str) -> dict[str, Any]:
    """Ask a resource server's question: is this token active?"""
    rs, rs_secret = make_client(
        name="RS",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="x",
        is_resource_server=True,
    )
    assert rs_secret is not None
    response = client.post(
        "/oauth2/introspect", data={"token": token_value}, headers=basic(rs.client_id, rs_secret)
    )
    assert response.status_code == 200
    return dict(response.get_json())


def test_a_leaked_secrets_tokens_stay_dead_after_disable_rotate_enable(
    client: FlaskClient, service
) -> None:
    """Disabling and rotating cut off every earlier token; enabling again revives none."""
    from authserver.admin.services.clients import rotate_client_secret, set_client_active
    from authserver.roles.ceiling import SYSTEM

    leaked = token(client, service).get_json()["access_token"]
    assert _introspect(client, leaked)["active"] is True

    set_client_active(service[0], False, actor=SYSTEM)
    new_secret = rotate_client_secret(service[0], actor=SYSTEM)
    set_client_active(service[0], True, actor=SYSTEM)
    db.session.commit()  # the test is the edge: services do not commit

    assert _introspect(client, leaked) == {"active": False}
    # The client works again with its new secret, at once.
    fresh = token(client, (service[0], new_secret))
    assert fresh.status_code == 200
    assert _introspect(client, fresh.get_json()["access_token"])["active"] is True
    assert token(client, service).status_code == 401  # the old secret is gone


def test_rotating_the_secret_alone_revokes_tokens_issued_before(
    client: FlaskClient, service
) -> None:
    from authserver.admin.services.clients import rotate_client_secret
    from authserver.roles.ceiling import SYSTEM

    before = token(client, service).get_json()["access_token"]
    secret = rotate_client_secret(service[0], actor=SYSTEM)
    db.session.commit()  # the test is the edge: services do not commit
    after = token(client, (service[0], secret)).get_json()["access_token"]

    assert _introspect(client, before) == {"active": False}
    assert _introspect(client, after)["active"] is True
