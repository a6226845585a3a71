"""CORS: browser clients on registered web origins may call the token, userinfo and
revocation endpoints; the public documents are open to any origin; the authorization
endpoint and the hosted pages never answer CORS."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from authserver.clients.origins import invalidate_origin_cache
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import get_code, pkce_pair, sign_in

SPA_ORIGIN = "http://localhost:5173"
OTHER_ORIGIN = "https://evil.example"


@pytest.fixture
def spa(app: Any) -> str:
    """A public client for a single-page app, with its web origin registered."""
    client, _ = make_client(
        name="SPA",
        auth_method="none",
        web_origins=[SPA_ORIGIN.upper().replace("HTTP", "http")],
    )
    invalidate_origin_cache()
    return client.client_id


def cors_headers(headers: Any) -> list[str]:
    return [name for name, _ in headers.items() if name.startswith("Access-Control-")]


def preflight(client: FlaskClient, path: str, origin: str, method: str = "POST") -> Any:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/userinfo"])
def test_preflight_from_a_registered_origin_is_allowed(
    client: FlaskClient, spa: str, path: str
) -> None:
    response = preflight(client, path, SPA_ORIGIN)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/userinfo"])
def test_preflight_from_an_unknown_origin_gets_no_cors_headers(
    client: FlaskClient, spa: str, path: str
) -> None:
    response = preflight(client, path, OTHER_ORIGIN)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Methods" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_token_endpoint_answers_the_registered_origin_even_on_errors(
    client: FlaskClient, spa: str
) -> None:
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": "nope", "client_id": spa},
        headers={"Origin": SPA_ORIGIN},
    )
    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "Access-Control-Allow-Credentials" not in response.headers
    refused = client.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": "nope", "client_id": spa},
        headers={"Origin": OTHER_ORIGIN},
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_spa_code_flow_token_and_userinfo_carry_cors_headers(client: FlaskClient, spa: str) -> None:
    make_user()
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, spa, challenge)
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": spa,
        },
        headers={"Origin": SPA_ORIGIN},
    )
    assert response.status_code == 200, response.get_json()
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    token = response.get_json()["access_token"]
    userinfo = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {token}", "Origin": SPA_ORIGIN}
    )
    assert userinfo.status_code == 200
    assert userinfo.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "WWW-Authenticate" in userinfo.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ],
)
def test_public_documents_are_open_to_every_origin(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers={"Origin": OTHER_ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert (
        preflight(client, path, OTHER_ORIGIN, "GET").headers["Access-Control-Allow-Origin"] == "*"
    )


@pytest.mark.parametrize("path", ["/authorize", "/login", "/", "/oauth2/introspect"])
def test_authorization_endpoint_and_pages_never_answer_cors(
    client: FlaskClient, spa: str, path: str
) -> None:
    response = client.get(path, headers={"Origin": SPA_ORIGIN})
    assert not cors_headers(response.headers)
    answered = preflight(client, path, SPA_ORIGIN, "GET")
    assert not cors_headers(answered.headers)


def test_a_disabled_client_origin_is_no_longer_allowed(app: Any, client: FlaskClient) -> None:
    from authserver.extensions import db

    row, _ = make_client(name="SPA", auth_method="none", web_origins=[SPA_ORIGIN])
    invalidate_origin_cache()
    assert (
        preflight(client, "/oauth2/token", SPA_ORIGIN).headers.get("Access-Control-Allow-Origin")
        == SPA_ORIGIN
    )
    row.is_active = False
    db.session.commit()
    invalidate_origin_cache()
    assert (
        "Access-Control-Allow-Origin" not in preflight(client, "/oauth2/token", SPA_ORIGIN).headers
    )
