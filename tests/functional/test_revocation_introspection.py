"""RFC 7009 revocation and RFC 7662 introspection."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_client, make_user
from tests.functional.test_token import introspect, refresh, tokens_for
from tests.oauth_helpers import basic


@pytest.fixture
def rp(app: Flask) -> tuple[Any, str]:
    make_user()
    return make_client()


def revoke(client: FlaskClient, rp, token: str, **extra: Any):
    return client.post(
        "/oauth2/revoke", data={"token": token, **extra}, headers=basic(rp[0].client_id, rp[1])
    )


def test_introspection_of_a_live_access_token(app: Flask, client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    info = introspect(client, rp, body["access_token"])
    assert info["active"] is True
    assert info["client_id"] == rp[0].client_id
    assert info["scope"] == "openid profile email offline_access"
    assert info["iss"] == app.config["AUTHSERVER"].issuer
    assert {"sub", "exp", "iat", "aud", "token_type"} <= set(info)


def test_introspection_of_a_refresh_token(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    info = introspect(client, rp, body["refresh_token"])
    assert info["active"] is True
    assert info["token_type"] == "refresh_token"
    rotated = refresh(client, rp, body["refresh_token"]).get_json()
    assert introspect(client, rp, body["refresh_token"]) == {"active": False}
    assert introspect(client, rp, rotated["refresh_token"])["active"] is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 5000, "eyJhbGciOiJub25lIn0.e30."])
def test_unknown_tokens_are_inactive(client: FlaskClient, rp, token: str) -> None:
    assert introspect(client, rp, token) == {"active": False}


def test_introspection_needs_client_authentication(client: FlaskClient, rp) -> None:
    response = client.post("/oauth2/introspect", data={"token": "x"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_public_clients_cannot_introspect(client: FlaskClient, app: Flask) -> None:
    public, _ = make_client(auth_method="none")
    response = client.post("/oauth2/introspect", data={"token": "x", "client_id": public.client_id})
    assert response.get_json()["error"] == "invalid_client"


def test_missing_token_is_invalid_request(client: FlaskClient, rp) -> None:
    response = client.post("/oauth2/introspect", headers=basic(rp[0].client_id, rp[1]))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_revoking_the_refresh_token_revokes_the_grant(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    response = revoke(client, rp, body["refresh_token"], token_type_hint="refresh_token")
    assert response.status_code == 200
    assert introspect(client, rp, body["access_token"]) == {"active": False}
    assert refresh(client, rp, body["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_revoking_an_access_token_leaves_the_refresh_token(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    assert (
        revoke(client, rp, body["access_token"], token_type_hint="access_token").status_code == 200
    )
    assert introspect(client, rp, body["access_token"]) == {"active": False}
    assert refresh(client, rp, body["refresh_token"]).status_code == 200


def test_wrong_hint_still_finds_the_token(client: FlaskClient, rp) -> None:
    body = tokens_for(client, rp)
    assert (
        revoke(client, rp, body["access_token"], token_type_hint="refresh_token").status_code == 200
    )
    assert introspect(client, rp, body["access_token"]) == {"active": False}


def test_unknown_token_revocation_answers_200(client: FlaskClient, rp) -> None:
    assert revoke(client, rp, "no-such-token").status_code == 200
    assert revoke(client, rp, "x", token_type_hint="bogus").status_code == 200


def test_a_client_cannot_revoke_another_clients_token(client: FlaskClient, rp) -> None:
    other = make_client(name="Other")
    body = tokens_for(client, rp)
    assert revoke(client, other, body["refresh_token"]).status_code == 200
    assert refresh(client, rp, body["refresh_token"]).status_code == 200


def test_public_client_can_revoke_its_own_tokens(client: FlaskClient, app: Flask) -> None:
    from tests.oauth_helpers import exchange, get_code, pkce_pair, sign_in

    make_user()
    public, _ = make_client(auth_method="none")
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, public.client_id, challenge)
    body = exchange(client, public.client_id, None, code, verifier).get_json()
    response = client.post(
        "/oauth2/revoke", data={"token": body["refresh_token"], "client_id": public.client_id}
    )
    assert response.status_code == 200
    data = {
        "grant_type": "refresh_token",
        "refresh_token": body["refresh_token"],
        "client_id": public.client_id,
    }
    assert client.post("/oauth2/token", data=data).get_json()["error"] == "invalid_grant"


def test_only_the_tokens_client_or_a_resource_server_may_introspect(
    client: FlaskClient, rp
) -> None:
    """RFC 7662 section 4: another client learns nothing, not even that the token is live."""
    tokens = tokens_for(client, rp)
    (rp, rp_secret) = rp
    other, other_secret = make_client(
        name="Another app", redirect_uris=[], grant_types=["client_credentials"], scope="x"
    )
    api, api_secret = make_client(
        name="API",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="x",
        is_resource_server=True,
    )
    assert other_secret is not None and api_secret is not None

    def ask(client_id: str, secret: str, value: str) -> dict[str, Any]:
        response = client.post(
            "/oauth2/introspect", data={"token": value}, headers=basic(client_id, secret)
        )
        assert response.status_code == 200
        return dict(response.get_json())

    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert ask(other.client_id, other_secret, access) == {"active": False}
    assert ask(other.client_id, other_secret, refresh) == {"active": False}
    assert ask(api.client_id, api_secret, access)["active"] is True
    # Refresh tokens are only ever the client's own business.
    assert ask(api.client_id, api_secret, refresh) == {"active": False}
    assert ask(rp.client_id, rp_secret, access)["active"] is True
    assert ask(rp.client_id, rp_secret, refresh)["active"] is True
