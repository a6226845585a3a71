"""Client registration refuses unsafe metadata and keeps only hashes of secrets."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from authserver.audit.actor import Actor
from authserver.audit.services import query
from authserver.clients.cache import load_client
from authserver.clients.metadata import ClientError
from authserver.clients.models import Client
from authserver.clients.services import (
    client_metadata,
    create_client,
    get_client,
    hash_secret,
    list_clients,
    rotate_secret,
    update_client,
)
from authserver.extensions import db
from authserver.roles.ceiling import SYSTEM, PrivilegeError

REDIRECT_URI = "https://rp.example.com/callback"


def valid_metadata(**changes: Any) -> dict[str, Any]:
    """A valid confidential web client's metadata, with some of it changed."""
    metadata: dict[str, Any] = {
        "name": "Example RP",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid profile email offline_access",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    metadata.update(changes)
    return metadata


def register(**changes: Any) -> tuple[Client, str | None]:
    """A valid confidential web client, with some metadata changed, registered by the system.

    Committed here: the service leaves that to its caller, as a request or command would.
    """
    made = create_client(actor=SYSTEM, **valid_metadata(**changes))
    db.session.commit()
    return made


def refused(**changes: Any) -> str:
    """The message of the ClientError raised for this metadata."""
    with pytest.raises(ClientError) as info:
        register(**changes)
    return str(info.value)


def test_a_confidential_client_gets_a_secret_stored_only_as_its_hash(app: Flask) -> None:
    client, secret = register()

    assert secret is not None and len(secret) >= 43
    assert client.client_secret_hash == hash_secret(secret)
    assert secret not in (client.client_secret_hash or "")
    assert len(client.client_id) == 24
    assert client.response_types == ["code"]
    assert get_client(client.client_id) is client


def test_a_public_client_has_no_secret(app: Flask) -> None:
    client, secret = register(
        token_endpoint_auth_method="none", redirect_uris=["com.example.app:/callback"]
    )

    assert secret is None
    assert client.client_secret_hash is None


def test_a_service_client_needs_no_redirect_uri(app: Flask) -> None:
    client, secret = register(
        redirect_uris=[], grant_types=["client_credentials"], scope="api:read api:write"
    )

    assert secret is not None
    assert client.redirect_uris == []
    assert client.response_types == []
    assert client.scope == "api:read api:write"


def test_the_secret_is_never_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")

    client, secret = register()
    new_secret = rotate_secret(client, actor=SYSTEM)

    assert secret and new_secret
    assert client.client_id in caplog.text
    assert secret not in caplog.text and new_secret not in caplog.text


def test_rotating_the_secret_makes_the_old_one_stop_working(app: Flask) -> None:
    client, old = register()
    assert old is not None
    cached = load_client(client.client_id)
    assert cached is not None and cached.check_client_secret(old)

    new = rotate_secret(client, actor=SYSTEM)
    db.session.commit()  # the caller's: the cached client is dropped once it commits

    fresh = load_client(client.client_id)
    assert fresh is not None
    assert fresh.check_client_secret(new)
    assert not fresh.check_client_secret(old)


def test_a_public_client_has_no_secret_to_rotate(app: Flask) -> None:
    client, _ = register(token_endpoint_auth_method="none")

    with pytest.raises(ClientError):
        rotate_secret(client, actor=SYSTEM)


def test_list_clients_returns_every_client_oldest_first(app: Flask) -> None:
    first, _ = register(name="First")
    second, _ = register(name="Second")

    assert [c.client_id for c in list_clients()] == [first.client_id, second.client_id]


def test_get_client_returns_none_for_an_unknown_id(app: Flask) -> None:
    assert get_client("no-such-client") is None


def test_metadata_uses_rfc_7591_names_and_never_the_secret(app: Flask) -> None:
    client, secret = register(id_token_signed_response_alg="ES256", skip_consent=True)

    metadata = client_metadata(client)

    assert metadata["client_name"] == "Example RP"
    assert metadata["redirect_uris"] == [REDIRECT_URI]
    assert metadata["token_endpoint_auth_method"] == "client_secret_basic"
    assert metadata["id_token_signed_response_alg"] == "ES256"
    assert metadata["skip_consent"] is True
    assert secret not in str(metadata)


def test_nothing_is_stored_when_the_metadata_is_refused(app: Flask) -> None:
    refused(grant_types=["implicit"])

    assert db.session.query(Client).count() == 0


@pytest.mark.parametrize("name", ["", "   "])
def test_the_name_must_not_be_empty(app: Flask, name: str) -> None:
    assert "client_name" in refused(name=name)


def test_at_least_one_grant_type_is_required(app: Flask) -> None:
    assert "grant_type" in refused(grant_types=[])


@pytest.mark.parametrize("grant", ["implicit", "password", "AUTHORIZATION_CODE"])
def test_unknown_grant_types_are_refused(app: Flask, grant: str) -> None:
    assert grant in refused(grant_types=["authorization_code", grant])


def test_unknown_auth_methods_are_refused(app: Flask) -> None:
    assert "private_key_jwt" in refused(token_endpoint_auth_method="private_key_jwt")


def test_a_public_client_cannot_use_client_credentials(app: Flask) -> None:
    message = refused(
        token_endpoint_auth_method="none", grant_types=["client_credentials"], redirect_uris=[]
    )
    assert "client_credentials" in message


def test_the_authorization_code_grant_needs_a_redirect_uri(app: Flask) -> None:
    assert "redirect URI" in refused(redirect_uris=[])


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example.com/cb",
        "https://rp.example.com:8443/cb?tenant=a",
        "http://127.0.0.1:8080/callback",
        "http://[::1]:8080/callback",
        "http://localhost/callback",
        "com.example.app:/oauth2redirect",
    ],
)
def test_safe_redirect_uris_are_accepted(app: Flask, uri: str) -> None:
    client, _ = register(redirect_uris=[uri], post_logout_redirect_uris=[uri])

    assert client.redirect_uris == [uri]
    assert client.post_logout_redirect_uris == [uri]


@pytest.mark.parametrize(
    "uri",
    [
        "/callback",
        "rp.example.com/callback",
        "https://rp.example.com/cb#fragment",
        "https://rp.example.com/cb#",
        "http://rp.example.com/callback",
        "http://127.0.0.2.example.com/callback",
        "https:///no-host",
        "https://user:pw@rp.example.com/cb",
        "https://rp.example.com/a b",
        "javascript:alert(1)",
        "myapp:/callback",
        "data:text/html,hi",
    ],
)
def test_unsafe_redirect_uris_are_refused(app: Flask, uri: str) -> None:
    assert "redirect_uri" in refused(redirect_uris=[uri])
    assert "post_logout_redirect_uri" in refused(post_logout_redirect_uris=[uri])


@pytest.mark.parametrize("scope", ['openid "quoted"', "back\\slash", "café", "openid openid"])
def test_scopes_must_be_rfc_6749_scope_tokens_given_once(app: Flask, scope: str) -> None:
    assert "scope" in refused(scope=scope)


def test_extra_spaces_in_the_scope_are_normalized(app: Flask) -> None:
    client, _ = register(scope="  openid   profile ")

    assert client.scope == "openid profile"


@pytest.mark.parametrize("resource", ["https://api.example.com", "urn:example:api"])
def test_resources_are_absolute_uris(app: Flask, resource: str) -> None:
    client, _ = register(resources=[resource])

    assert client.resources == [resource]


@pytest.mark.parametrize("resource", ["api.example.com", "https://api.example.com/#x", ""])
def test_resources_with_fragments_or_relative_are_refused(app: Flask, resource: str) -> None:
    assert "resource" in refused(resources=[resource])


@pytest.mark.parametrize(
    "origin", ["https://app.example.com", "http://localhost:3000", "https://a.example:8443"]
)
def test_web_origins_are_scheme_host_and_port(app: Flask, origin: str) -> None:
    client, _ = register(web_origins=[origin])

    assert client.web_origins == [origin]


@pytest.mark.parametrize(
    ("origin", "stored"),
    [
        ("HTTPS://App.Example.COM", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_web_origins_are_stored_as_browsers_send_them(app: Flask, origin: str, stored: str) -> None:
    client, _ = register(web_origins=[origin])

    assert client.web_origins == [stored]


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x",
        "ftp://files.example.com",
        "https://app.example.com:99999",
        "app.example.com",
    ],
)
def test_web_origins_with_a_path_or_other_scheme_are_refused(app: Flask, origin: str) -> None:
    assert "web_origin" in refused(web_origins=[origin])


@pytest.mark.parametrize("alg", ["none", "HS256", "rs256"])
def test_id_token_alg_must_be_rs256_or_es256(app: Flask, alg: str) -> None:
    assert "id_token_signed_response_alg" in refused(id_token_signed_response_alg=alg)


# The privilege ceiling (roles.ceiling), as the client services apply it


def developer() -> Actor:
    """A person holding the built-in developer role's permissions."""
    return Actor("user", "dev", frozenset({"clients:read", "clients:write"}))


def test_roles_and_the_resource_server_flag_are_registered_and_shown(app: Flask) -> None:
    client, _ = register(roles=["viewer"], is_resource_server=True)

    metadata = client_metadata(client)
    assert metadata["roles"] == ["viewer"] and metadata["is_resource_server"] is True
    assert "no such role: wizard" in refused(roles=["wizard"])


def test_no_one_registers_a_client_holding_more_than_themselves(app: Flask) -> None:
    service = {"grant_types": ["client_credentials"], "redirect_uris": []}
    for changes in (
        {"roles": ["admin"]},
        {"roles": ["viewer"]},
        {"skip_consent": True},
        {**service, "scope": "org:acme"},
    ):
        with pytest.raises(PrivilegeError):
            create_client(actor=developer(), **{**valid_metadata(), **changes})
    assert list_clients() == []
    made, _ = create_client(actor=developer(), **valid_metadata(roles=["developer"]))
    assert made.role_names == ["developer"]


def test_a_client_holding_more_than_the_actor_is_not_changed_by_it(app: Flask) -> None:
    client, _ = register(roles=["admin"], grant_types=["client_credentials"], redirect_uris=[])
    old_hash = client.client_secret_hash

    with pytest.raises(PrivilegeError, match=r"change a client holding the permission \*"):
        rotate_secret(client, actor=developer())
    with pytest.raises(PrivilegeError):
        update_client(client, actor=developer(), name="Mine now")
    assert client.client_secret_hash == old_hash and client.tokens_not_before is None
    assert client.name == "Example RP"


def test_rotating_the_secret_cuts_off_earlier_tokens(app: Flask) -> None:
    client, _ = register()
    assert client.tokens_not_before is None

    rotate_secret(client, actor=SYSTEM)

    assert client.tokens_not_before is not None


def test_registering_and_rotating_leave_committing_to_the_caller(app: Flask) -> None:
    """STYLE.md "Transactions": the request or CLI command commits, not the service."""
    client, _ = register()
    old_hash = client.client_secret_hash
    rotate_secret(client, actor=SYSTEM)
    made, _ = create_client(actor=SYSTEM, **valid_metadata(name="Never stored"))
    made_id = made.client_id

    db.session.rollback()

    assert get_client(made_id) is None
    assert get_client(client.client_id).client_secret_hash == old_hash  # type: ignore[union-attr]


def test_an_update_reports_what_changed_and_leaves_committing_to_the_caller(app: Flask) -> None:
    client, _ = register()

    changed = update_client(client, actor=SYSTEM, name="Renamed", roles=["viewer"])

    assert changed == ["name", "roles"]
    db.session.rollback()
    assert get_client(client.client_id).name == "Example RP"  # type: ignore[union-attr]


def test_an_update_is_audited_and_the_cached_client_is_dropped_when_committed(
    app: Flask,
) -> None:
    client, _ = register()
    assert load_client(client.client_id).client_name == "Example RP"  # type: ignore[union-attr]

    update_client(client, actor=SYSTEM, name="Renamed", event="admin.client.updated")
    assert load_client(client.client_id).client_name == "Example RP"  # type: ignore[union-attr]
    db.session.commit()

    assert load_client(client.client_id).client_name == "Renamed"  # type: ignore[union-attr]
    (event,) = query(event="admin.client.updated")
    assert event.client_id == client.client_id and event.details == {"changed": ["name"]}


def test_rfc_7592_responses_hold_the_registered_metadata_alone(app: Flask) -> None:
    client, _ = register(web_origins=["https://rp.example.com"], roles=["viewer"])

    full, registered = client_metadata(client), client_metadata(client, management=False)

    assert set(full) - set(registered) == {
        "resources",
        "web_origins",
        "skip_consent",
        "is_active",
        "roles",
        "is_resource_server",
        "claims_in_id_token",
        "refresh_token_grace_period_seconds",
    }
    assert all(full[key] == value for key, value in registered.items())


def test_a_post_logout_redirect_uri_names_exactly_the_clients_that_registered_it(
    app: Flask,
) -> None:
    from authserver.clients.services import client_ids_with_post_logout_redirect_uri
    from tests.factories import make_client

    uri = "https://rp.example.com/signed_out%20now?x=1"
    one, _ = make_client(post_logout_redirect_uris=[uri, "https://rp.example.com/other"])
    make_client(
        name="Look-alike", post_logout_redirect_uris=["https://rp.example.com/signedXout%20now?x=1"]
    )

    assert client_ids_with_post_logout_redirect_uri(uri) == [one.client_id]
    assert client_ids_with_post_logout_redirect_uri("https://rp.example.com/signed") == []
    assert client_ids_with_post_logout_redirect_uri("https://rp.example.com/signed%") == []
