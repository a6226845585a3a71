"""authserver.resource: offline verification of our access tokens by a resource server."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask, jsonify
from flask.testing import FlaskClient
from joserfc import jwt

from authserver.resource import ResourceServer, current_token
from tests.factories import make_client, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in

API = "https://api.example.com/"


@pytest.fixture
def issuer_client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api(app: Flask, issuer_client: FlaskClient) -> tuple[FlaskClient, ResourceServer, list[str]]:
    """A separate Flask API, fetching discovery and JWKS from the issuer through its test client."""
    fetched: list[str] = []
    issuer = app.config["AUTHSERVER"].issuer

    def fetch(url: str) -> Any:
        fetched.append(url)
        return issuer_client.get(url.removeprefix(issuer)).get_json()

    rs = ResourceServer(issuer=issuer, audience=API, fetch=fetch, refresh_interval=0)
    api_app = Flask("api")

    @api_app.get("/notes")
    @rs.require_token(scopes=["notes:read"])
    def notes() -> Any:
        return jsonify(owner=current_token()["sub"])

    @api_app.get("/admin")
    @rs.require_token(roles=["admin"])
    def admin() -> Any:
        return jsonify(ok=True)

    return api_app.test_client(), rs, fetched


def service_token(client: FlaskClient, scope: str = "notes:read", resource: str = API) -> str:
    svc, secret = make_client(
        name="svc",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="notes:read other",
        resources=[API, "https://other.example.com/"],
    )
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
        headers=basic(svc.client_id, secret),
    )
    return str(response.get_json()["access_token"])


def call(api_client: FlaskClient, token: str | None, path: str = "/notes"):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api_client.get(path, headers=headers)


def test_valid_token_is_accepted(issuer_client: FlaskClient, api) -> None:
    api_client, _, fetched = api
    response = call(api_client, service_token(issuer_client))
    assert response.status_code == 200
    assert response.get_json()["owner"]
    assert fetched[0].endswith("/.well-known/openid-configuration")


def test_no_token_is_401_with_a_bare_challenge(api) -> None:
    response = call(api[0], None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_wrong_audience_is_refused(issuer_client: FlaskClient, api) -> None:
    token = service_token(issuer_client, resource="https://other.example.com/")
    response = call(api[0], token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_wrong_scope_is_403_insufficient_scope(issuer_client: FlaskClient, api) -> None:
    response = call(api[0], service_token(issuer_client, scope="other"))
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="notes:read"' in challenge


def test_tampered_token_is_refused(issuer_client: FlaskClient, api) -> None:
    token = service_token(issuer_client)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
    assert call(api[0], f"{head}.{payload}.{flipped}").status_code == 401


def test_expired_token_is_refused(app: Flask, api) -> None:
    from authserver.keys import current_keyring

    kid, key = current_keyring().signing_key("ES256")
    now = int(time.time())
    claims = {
        "iss": app.config["AUTHSERVER"].issuer,
        "aud": API,
        "sub": "x",
        "client_id": "x",
        "iat": now - 3600,
        "exp": now - 600,
        "jti": "j",
        "scope": "notes:read",
    }
    token = jwt.encode({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims, key)
    response = call(api[0], token)
    assert response.status_code == 401
    assert "expired" in response.get_json()["error_description"]


def test_id_token_is_not_an_access_token(app: Flask, api) -> None:
    from authserver.keys import current_keyring

    kid, key = current_keyring().signing_key("RS256")
    now = int(time.time())
    claims = {"iss": app.config["AUTHSERVER"].issuer, "aud": API, "sub": "x", "exp": now + 60}
    token = jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, key)
    assert call(api[0], token).status_code == 401


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_rotation_is_picked_up_on_an_unknown_kid(app: Flask, issuer_client, api) -> None:
    from authserver.keys import current_keyring

    api_client, _, fetched = api
    assert call(api_client, service_token(issuer_client)).status_code == 200
    jwks_fetches = sum(url.endswith("jwks.json") for url in fetched)
    current_keyring().rotate(immediately=True)
    assert call(api_client, service_token(issuer_client)).status_code == 200
    assert sum(url.endswith("jwks.json") for url in fetched) == jwks_fetches + 1


def test_roles_come_from_the_persons_token(app: Flask, issuer_client: FlaskClient, api) -> None:
    """With the `roles` scope (registered and consented), the token carries the roles."""
    make_user(roles=["admin"])
    rp, secret = make_client(resources=[API], scope="openid offline_access roles")
    sign_in(issuer_client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(
        issuer_client, rp.client_id, challenge, resource=API, scope="openid offline_access roles"
    )
    token = exchange(issuer_client, rp.client_id, secret, code, verifier).get_json()["access_token"]
    assert call(api[0], token, "/admin").status_code == 200
    assert call(api[0], service_token(issuer_client), "/admin").status_code == 403


def test_unreachable_issuer_is_503(app: Flask) -> None:
    def fetch(url: str) -> Any:
        raise OSError("connection refused")

    rs = ResourceServer(issuer="http://127.0.0.1:9", audience=API, fetch=fetch)
    api_app = Flask("api")

    @api_app.get("/x")
    @rs.require_token()
    def x() -> Any:
        return "ok"

    token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2ln"
    response = api_app.test_client().get("/x", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 503
