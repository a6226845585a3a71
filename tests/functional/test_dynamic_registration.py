"""Dynamic client registration (RFC 7591) and management (RFC 7592), where it is enabled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from authserver.audit.models import AuditEvent
from authserver.clients.models import Client, InitialAccessToken
from authserver.clients.services import get_client
from authserver.core.secrets import hash_secret as hash_token
from authserver.extensions import db, utcnow
from tests.factories import REDIRECT_URI, make_client, make_initial_access_token, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in

REGISTER = "/oauth2/register"
WEB_APP = {
    "client_name": "Registered RP",
    "redirect_uris": [REDIRECT_URI],
    "grant_types": ["authorization_code", "refresh_token"],
    "scope": "openid profile email offline_access",
    "contacts": ["ops@rp.example.com"],
    "logo_uri": "https://rp.example.com/logo.png",
}


@pytest.fixture
def app(app_factory: Any) -> Iterator[Flask]:
    app = app_factory(dynamic_registration=True)
    with app.app_context():
        yield app


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client: FlaskClient, metadata: dict[str, Any], token: str | None = None) -> Any:
    token = token if token is not None else make_initial_access_token(note="test")
    return client.post(REGISTER, json=metadata, headers=bearer(token) if token else {})


def registered(client: FlaskClient, **metadata: Any) -> dict[str, Any]:
    response = register(client, {**WEB_APP, **metadata})
    assert response.status_code == 201, response.text
    return response.get_json()


def configuration_path(body: dict[str, Any]) -> str:
    return f"{REGISTER}/{body['client_id']}"


# Switched off


def test_the_endpoints_do_not_exist_when_registration_is_off(app_factory: Any) -> None:
    disabled = app_factory()
    with disabled.app_context():
        token = make_initial_access_token()
        rp, _ = make_client()
    browser = disabled.test_client()

    responses = [
        browser.post(REGISTER, json=WEB_APP, headers=bearer(token)),
        browser.get(f"{REGISTER}/{rp.client_id}", headers=bearer(token)),
        browser.put(f"{REGISTER}/{rp.client_id}", json={}, headers=bearer(token)),
        browser.delete(f"{REGISTER}/{rp.client_id}", headers=bearer(token)),
    ]
    for response in responses:
        assert response.status_code == 404
        assert response.is_json
    with disabled.app_context():
        assert db.session.scalar(select(InitialAccessToken.used_at)) is None


# Initial access tokens


def test_registration_without_an_initial_access_token_is_unauthorized(
    client: FlaskClient,
) -> None:
    response = client.post(REGISTER, json=WEB_APP)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"] == "invalid_token"
    assert db.session.scalar(select(Client)) is None


@pytest.mark.parametrize("scheme", ["Basic", "Bearer"])
def test_an_unknown_initial_access_token_is_refused(client: FlaskClient, scheme: str) -> None:
    make_initial_access_token()
    response = client.post(REGISTER, json=WEB_APP, headers={"Authorization": f"{scheme} nope"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_an_initial_access_token_allows_exactly_one_registration(client: FlaskClient) -> None:
    token = make_initial_access_token(note="for the RP team", created_by="admin@example.com")
    first = register(client, WEB_APP, token)
    second = register(client, WEB_APP, token)

    assert first.status_code == 201
    assert second.status_code == 401
    assert 'error="invalid_token"' in second.headers["WWW-Authenticate"]
    row = db.session.scalar(select(InitialAccessToken))
    assert row.used_at is not None
    assert row.client_id == first.get_json()["client_id"]
    assert row.token_hash == hash_token(token) != token
    assert len(db.session.scalars(select(Client)).all()) == 1


def test_an_expired_initial_access_token_is_refused(client: FlaskClient) -> None:
    token = make_initial_access_token(ttl=60)
    db.session.execute(
        update(InitialAccessToken).values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    response = register(client, WEB_APP, token)
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_refused_metadata_leaves_the_initial_access_token_usable(client: FlaskClient) -> None:
    token = make_initial_access_token()
    refused = register(client, {**WEB_APP, "redirect_uris": ["http://rp.example.com/cb"]}, token)
    accepted = register(client, WEB_APP, token)
    assert refused.status_code == 400
    assert accepted.status_code == 201


# Registration


def test_a_confidential_client_registers_and_completes_the_code_flow(
    client: FlaskClient,
) -> None:
    user = make_user()
    response = register(client, WEB_APP)

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["response_types"] == ["code"]
    assert body["client_name"] == "Registered RP"
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert abs(body["client_id_issued_at"] - utcnow().timestamp()) < 60
    assert body["registration_client_uri"] == (
        f"{client.application.config['AUTHSERVER'].issuer}/oauth2/register/{body['client_id']}"
    )
    assert "contacts" not in body and "skip_consent" not in body
    stored = get_client(body["client_id"])
    assert stored is not None and not stored.skip_consent
    assert stored.registration_access_token_hash == hash_token(body["registration_access_token"])

    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, body["client_id"], challenge)
    tokens = exchange(client, body["client_id"], body["client_secret"], code, verifier)
    assert tokens.status_code == 200, tokens.text
    assert tokens.get_json()["id_token"]
    userinfo = client.get("/userinfo", headers=bearer(tokens.get_json()["access_token"]))
    assert userinfo.get_json()["sub"] == user.sub


def test_a_public_client_registers_with_the_defaults_and_uses_pkce(client: FlaskClient) -> None:
    make_user()
    response = register(
        client, {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    )

    assert response.status_code == 201, response.text
    body = response.get_json()
    assert "client_secret" not in body and "client_secret_expires_at" not in body
    assert body["grant_types"] == ["authorization_code"]
    assert body["response_types"] == ["code"]
    assert body["client_name"] == body["client_id"]

    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, body["client_id"], challenge, scope="openid")
    tokens = exchange(client, body["client_id"], None, code, verifier)
    assert tokens.status_code == 200, tokens.text


def test_a_registered_client_is_always_asked_for_consent(client: FlaskClient) -> None:
    make_user()
    body = registered(client, skip_consent=True)
    sign_in(client)
    _, challenge = pkce_pair()
    page = client.get(
        "/authorize",
        query_string={
            "response_type": "code",
            "client_id": body["client_id"],
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert page.status_code == 200
    assert 'value="allow"' in page.text


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"redirect_uris": ["http://rp.example.com/callback"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://rp.example.com/callback#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"grant_types": ["password"]}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"response_types": ["code id_token"]}, "invalid_client_metadata"),
        (
            {"grant_types": ["client_credentials"], "response_types": ["code"]},
            "invalid_client_metadata",
        ),
        ({"grant_types": ["authorization_code"], "response_types": []}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"redirect_uris": REDIRECT_URI}, "invalid_client_metadata"),
        ({"scope": 'openid "quoted"'}, "invalid_client_metadata"),
        ({"id_token_signed_response_alg": "none"}, "invalid_client_metadata"),
    ],
)
def test_invalid_metadata_is_refused_with_the_rfc_7591_error(
    client: FlaskClient, metadata: dict[str, Any], error: str
) -> None:
    response = register(client, {**WEB_APP, **metadata})
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    assert response.get_json()["error_description"]
    assert db.session.scalar(select(Client)) is None


def test_a_body_that_is_not_a_json_object_is_refused(client: FlaskClient) -> None:
    token = make_initial_access_token()
    response = client.post(REGISTER, data="redirect_uris=x", headers=bearer(token))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_client_metadata"


def test_the_admin_scope_cannot_be_registered(client: FlaskClient) -> None:
    response = register(
        client,
        {
            "grant_types": ["client_credentials"],
            "response_types": [],
            "scope": "openid admin",
        },
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_client_metadata"
    assert "admin" in response.get_json()["error_description"]
    assert db.session.scalar(select(Client)) is None


def test_a_service_registers_for_client_credentials(client: FlaskClient) -> None:
    body = registered(
        client, grant_types=["client_credentials"], redirect_uris=[], scope="reports:read"
    )
    assert body["response_types"] == []
    tokens = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "reports:read"},
        headers=basic(body["client_id"], body["client_secret"]),
    )
    assert tokens.status_code == 200, tokens.text


def test_registration_is_audited(client: FlaskClient) -> None:
    body = registered(client)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "client.registered"))
    assert event is not None
    assert event.client_id == body["client_id"]
    assert event.details["initial_grant_note"] == "test"
    assert event.actor_type == "client"


# Management (RFC 7592)


def test_the_client_reads_its_registration(client: FlaskClient) -> None:
    body = registered(client)
    response = client.get(
        configuration_path(body), headers=bearer(body["registration_access_token"])
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    read = response.get_json()
    assert "client_secret" not in read
    expected = {k: v for k, v in body.items() if k != "client_secret"}
    assert read == expected


def test_the_client_replaces_its_metadata_and_gets_a_new_registration_token(
    client: FlaskClient,
) -> None:
    body = registered(client)
    new_redirect = "https://rp.example.com/other"
    response = client.put(
        configuration_path(body),
        json={
            "client_id": body["client_id"],
            "client_secret": body["client_secret"],
            "client_name": "Renamed RP",
            "redirect_uris": [new_redirect],
            "grant_types": ["authorization_code"],
            "scope": "openid",
        },
        headers=bearer(body["registration_access_token"]),
    )

    assert response.status_code == 200, response.text
    updated = response.get_json()
    assert updated["client_name"] == "Renamed RP"
    assert updated["redirect_uris"] == [new_redirect]
    assert updated["grant_types"] == ["authorization_code"]
    assert updated["scope"] == "openid"
    assert updated["registration_access_token"] != body["registration_access_token"]
    stale = client.get(configuration_path(body), headers=bearer(body["registration_access_token"]))
    assert stale.status_code == 401
    fresh = client.get(
        configuration_path(body), headers=bearer(updated["registration_access_token"])
    )
    assert fresh.get_json()["client_name"] == "Renamed RP"
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "client.updated"))
    assert event is not None and "redirect_uris" in event.details["changed"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_request"),
        ({"client_secret": "wrong"}, "invalid_request"),
        ({"registration_access_token": "x"}, "invalid_request"),
        ({"client_id_issued_at": 0}, "invalid_request"),
        ({"redirect_uris": ["http://evil.example.com/cb"]}, "invalid_redirect_uri"),
        ({"scope": "openid admin"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "none"}, "invalid_client_metadata"),
    ],
)
def test_an_invalid_update_is_refused_and_changes_nothing(
    client: FlaskClient, change: dict[str, Any], error: str
) -> None:
    body = registered(client)
    request = {k: body[k] for k in ("client_id", "client_name", "redirect_uris", "grant_types")}
    response = client.put(
        configuration_path(body),
        json={**request, **change},
        headers=bearer(body["registration_access_token"]),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    db.session.expire_all()
    stored = get_client(body["client_id"])
    assert stored is not None
    assert stored.scope == WEB_APP["scope"] and stored.redirect_uris == [REDIRECT_URI]
    assert stored.registration_access_token_hash == hash_token(body["registration_access_token"])


def test_the_client_deletes_itself_and_its_tokens_stop_working(client: FlaskClient) -> None:
    make_user()
    body = registered(client)
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, body["client_id"], challenge)
    tokens = exchange(client, body["client_id"], body["client_secret"], code, verifier).get_json()

    response = client.delete(
        configuration_path(body), headers=bearer(body["registration_access_token"])
    )

    assert response.status_code == 204
    assert response.data == b""
    assert get_client(body["client_id"]) is None
    userinfo = client.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert userinfo.status_code == 401
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(body["client_id"], body["client_secret"]),
    )
    assert refreshed.status_code in (400, 401)
    again = client.get(configuration_path(body), headers=bearer(body["registration_access_token"]))
    assert again.status_code == 401
    assert db.session.scalar(select(AuditEvent).where(AuditEvent.event == "client.deleted"))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_wrong_or_foreign_registration_token_is_unauthorized_never_not_found(
    client: FlaskClient, method: str
) -> None:
    mine, theirs = registered(client), registered(client)
    admin_made, _ = make_client()
    attempts = [
        (configuration_path(mine), "not-the-token"),
        (configuration_path(mine), theirs["registration_access_token"]),
        (configuration_path(mine), ""),
        (f"{REGISTER}/no-such-client", mine["registration_access_token"]),
        (f"{REGISTER}/{admin_made.client_id}", mine["registration_access_token"]),
    ]
    for path, token in attempts:
        response = client.open(
            path, method=method, json={"client_id": mine["client_id"]}, headers=bearer(token)
        )
        assert response.status_code == 401, (path, token)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["error"] == "invalid_token"
    assert get_client(mine["client_id"]) is not None


# Discovery and the CLI


def test_discovery_advertises_the_registration_endpoint_only_when_enabled(
    app: Flask, client: FlaskClient, app_factory: Any
) -> None:
    issuer = app.config["AUTHSERVER"].issuer
    enabled = client.get("/.well-known/openid-configuration").get_json()
    disabled = app_factory().test_client().get("/.well-known/openid-configuration").get_json()
    assert enabled["registration_endpoint"] == f"{issuer}/oauth2/register"
    assert "registration_endpoint" not in disabled


def test_the_cli_prints_a_working_initial_access_token(app: Flask, client: FlaskClient) -> None:
    result = app.test_cli_runner().invoke(
        args=["clients", "initial-token", "--note", "partner", "--ttl", "600"]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert len(token) >= 43 and "\n" not in token
    row = db.session.scalar(select(InitialAccessToken))
    assert row.note == "partner" and row.token_hash == hash_token(token)
    assert 590 <= (row.expires_at - row.created_at).total_seconds() <= 600
    issued = db.session.scalar(
        select(AuditEvent).where(AuditEvent.event == "client.initial_token_issued")
    )
    assert issued is not None and issued.actor_type == "system"
    assert issued.details["note"] == "partner" and token not in str(issued.details)
    assert register(client, WEB_APP, token).status_code == 201
