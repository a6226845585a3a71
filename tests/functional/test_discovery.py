"""Discovery (OpenID Connect Discovery 1.0, RFC 8414): complete, exact, cacheable."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.config import Config
from authserver.oidc.discovery import metadata

ISSUER = "https://id.example.com/tenant-a"
PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")

EXPECTED = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/authorize",
    "token_endpoint": f"{ISSUER}/oauth2/token",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
    "revocation_endpoint": f"{ISSUER}/oauth2/revoke",
    "revocation_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ],
    "introspection_endpoint": f"{ISSUER}/oauth2/introspect",
    "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    "device_authorization_endpoint": f"{ISSUER}/oauth2/device_authorization",
    "end_session_endpoint": f"{ISSUER}/logout",
    "scopes_supported": ["openid", "profile", "email", "offline_access", "roles"],
    "response_types_supported": ["code"],
    "response_modes_supported": ["query", "form_post"],
    "grant_types_supported": [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ],
    "subject_types_supported": ["public", "pairwise"],
    "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
    "code_challenge_methods_supported": ["S256"],
    "claims_supported": [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "at_hash",
        "sid",
        "name",
        "email",
        "email_verified",
        "updated_at",
        "roles",
        "org_id",
        "org_roles",
    ],
    "claim_types_supported": ["normal"],
    "claims_parameter_supported": True,
    "request_parameter_supported": False,
    "request_uri_parameter_supported": False,
    "require_request_uri_registration": False,
    "authorization_response_iss_parameter_supported": True,
    "prompt_values_supported": ["none", "login", "consent", "select_account"],
    "acr_values_supported": ["1", "2"],
    "ui_locales_supported": ["en"],
    # OpenID Connect Back-Channel Logout 1.0 section 2.1, Front-Channel Logout 1.0 section 3.
    "backchannel_logout_supported": True,
    "backchannel_logout_session_supported": True,
    "frontchannel_logout_supported": True,
    "frontchannel_logout_session_supported": True,
}


@pytest.mark.parametrize("path", PATHS)
def test_the_metadata_document_is_exactly_what_we_support(app_factory: Any, path: str) -> None:
    response = app_factory(issuer=ISSUER).test_client().get(path)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == EXPECTED


def test_both_documents_are_the_same_bytes(app_factory: Any) -> None:
    client = app_factory().test_client()
    oidc, oauth = (client.get(path).data for path in PATHS)
    assert oidc == oauth


def test_the_issuer_is_the_configured_one_and_every_endpoint_lives_under_it() -> None:
    document = metadata(Config(issuer=ISSUER, secret_key="s" * 40, instance_path="/tmp"))
    assert document["issuer"] == ISSUER
    urls = {k: v for k, v in document.items() if k.endswith(("_endpoint", "_uri"))}
    assert len(urls) == 8
    assert all(url.startswith(ISSUER + "/") for url in urls.values())
    assert "plain" not in document["code_challenge_methods_supported"]
    assert "none" not in document["id_token_signing_alg_values_supported"]


def test_every_advertised_endpoint_is_served_by_the_app(app_factory: Any) -> None:
    app = app_factory(issuer=ISSUER)
    adapter = app.url_map.bind("id.example.com")
    for name, url in metadata(app.config["AUTHSERVER"]).items():
        if name.endswith(("_endpoint", "_uri")):
            path = url.removeprefix(ISSUER)
            method = "POST" if path.startswith("/oauth2/") else "GET"
            assert adapter.match(path, method=method), name


@pytest.mark.parametrize("path", PATHS)
def test_the_documents_are_cacheable_and_public(app_factory: Any, path: str) -> None:
    response = app_factory().test_client().get(path)
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("path", PATHS)
def test_head_works_and_other_methods_are_refused_without_a_5xx(
    app_factory: Any, path: str
) -> None:
    client = app_factory().test_client()
    head = client.head(path)
    assert head.status_code == 200 and head.data == b""
    for method in ("POST", "PUT", "DELETE"):
        assert client.open(path, method=method).status_code == 405


def test_every_advertised_person_claim_can_be_released(client) -> None:
    from authserver.oidc.claims import SUPPORTED_CLAIMS

    advertised = set(client.get("/.well-known/openid-configuration").get_json()["claims_supported"])
    id_token_claims = {
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "at_hash",
        "sid",
    }
    assert advertised - id_token_claims == set(SUPPORTED_CLAIMS)


def test_the_registration_endpoint_is_advertised_only_where_registration_is_on() -> None:
    off, on = (
        metadata(
            Config(
                issuer=ISSUER,
                secret_key="s" * 40,
                instance_path="/tmp",
                dynamic_registration=enabled,
            )
        )
        for enabled in (False, True)
    )
    assert "registration_endpoint" not in off
    assert on == {**off, "registration_endpoint": f"{ISSUER}/oauth2/register"}


def test_the_advertised_registration_endpoint_is_served(app_factory: Any) -> None:
    client = app_factory(issuer=ISSUER, dynamic_registration=True).test_client()
    document = client.get("/.well-known/openid-configuration").get_json()
    path = document["registration_endpoint"].removeprefix(ISSUER)
    response = client.post(path, json={})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_roles_and_organizations_are_advertised(client) -> None:
    document = client.get("/.well-known/openid-configuration").get_json()
    assert "roles" in document["scopes_supported"]
    assert {"roles", "org_id", "org_roles"} <= set(document["claims_supported"])
