"""Dynamic client registration (RFC 7591) and its management protocol (RFC 7592).

A developer who holds an initial access token (issued by an admin, single use) POSTs
client metadata and receives a client_id, a secret for a confidential client, and a
registration access token with which the client later reads, replaces or deletes its
own registration. Both kinds of token are random, shown once and stored as SHA-256.

Authlib's `ClientRegistrationEndpoint` and `ClientConfigurationEndpoint` were not
used: they answer a missing token with 403 access_denied rather than RFC 6750's 401,
validate metadata by their own rules instead of `clients.services`, and read back a
stored client secret, which we never keep. The metadata rules here are the ones the
CLI and the admin console use (`clients.services`), so every path refuses the same
values with the same messages.

The policy that registers these clients holds no permission (`roles.ceiling`
DYNAMIC_REGISTRATION): no roles, never first-party, no `admin` scope, and no `org:`
scope for a client's own (client_credentials) tokens. RFC 7592 updates go through the
same ceiling, and a client given more since (by an admin) is no longer changed here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import update

from ..audit import record
from ..audit.actor import Actor
from ..core import capabilities
from ..core.secrets import hash_secret, new_token, same_secret
from ..extensions import db
from ..roles.ceiling import DYNAMIC_REGISTRATION, PrivilegeError
from . import services
from .cache import invalidate_on_commit
from .initial_access import consume_initial_token, find_initial_token
from .metadata import ClientError
from .models import Client, InitialAccessToken
from .services import client_metadata, create_client, get_client

logger = logging.getLogger(__name__)

# Scopes never granted through self-service registration (the admin API's scope).
FORBIDDEN_SCOPES = frozenset({"admin"})
DEFAULT_SCOPE = "openid profile email"
# Stands in for a missing client_name until the client_id exists to take its place.
UNNAMED = "unnamed client"
# RFC 7592 section 2.2: the update request MUST NOT include these server-provisioned fields.
SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
# A digest no token hashes to, compared when the client is unknown so the work is the same.
NO_HASH = "0" * 64


@dataclass
class RegistrationError(Exception):
    """An error response: RFC 7591 section 3.2.2, RFC 7592 section 2, RFC 6750 section 3.1."""

    status: int
    error: str
    description: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


# RFC 7591: registration


def register_client(metadata: Any, initial_token: str | None) -> dict[str, Any]:
    """RFC 7591 section 3.1: register a client; returns the client information response."""
    initial = live_initial_token(initial_token)
    requested = requested_metadata(metadata)
    name = requested.pop("client_name")
    if not consume_initial_token(initial):
        raise unauthorized("the initial access token is invalid, used or expired")
    try:
        # The consumed initial token is committed with the client, by the request; the 400
        # answer to refused metadata rolls its use back, so the token stays usable.
        client, secret = create_client(
            actor=DYNAMIC_REGISTRATION, name=name or UNNAMED, skip_consent=False, **requested
        )
    except (ClientError, PrivilegeError) as exc:
        raise metadata_error(exc) from None
    if name is None:
        # RFC 7591 section 2: without a client_name the server may show the client_id.
        client.name = client.client_id
    registration_token = new_token()
    client.registration_access_token_hash = hash_secret(registration_token)
    db.session.execute(
        update(InitialAccessToken)
        .where(InitialAccessToken.id == initial.id)
        .values(client_id=client.client_id)
    )
    _audit(
        "client.registered",
        client,
        # Key names avoid "token": the audit log drops details that may hold a secret.
        {"initial_grant_note": initial.note, "initial_grant_issued_by": initial.created_by},
    )
    logger.info("client registered dynamically: client_id=%s", client.client_id)
    return client_information(client, registration_token, secret)


def live_initial_token(token: str | None) -> InitialAccessToken:
    """The unused, unexpired initial access token presented, or 401 invalid_token."""
    if not token:
        raise unauthorized("an initial access token is required", missing=True)
    row = find_initial_token(token)
    if row is None:
        raise unauthorized("the initial access token is invalid, used or expired")
    return row


# RFC 7592: management


def read_client(client_id: str, registration_token: str | None) -> dict[str, Any]:
    """RFC 7592 section 2.1: the current registration, with the token that was presented."""
    client = authorized_client(client_id, registration_token)
    assert registration_token is not None
    return client_information(client, registration_token)


def update_client(client_id: str, registration_token: str | None, metadata: Any) -> dict[str, Any]:
    """RFC 7592 section 2.2: replace the metadata; a new registration access token is issued."""
    client = authorized_client(client_id, registration_token)
    _check_may_manage(client)
    _check_update_request(client, metadata)
    requested = requested_metadata(metadata)
    if requested["token_endpoint_auth_method"] != client.token_endpoint_auth_method:
        raise RegistrationError(
            400, "invalid_client_metadata", "token_endpoint_auth_method cannot be changed"
        )
    name = requested["client_name"]
    try:
        services.update_client(
            client,
            # The policy of self-service registration, named as the client in the audit log.
            actor=Actor(DYNAMIC_REGISTRATION.type, client.client_id, DYNAMIC_REGISTRATION.power),
            # RFC 7591 section 2: without a client_name the server may show the client_id.
            name=name or client.client_id,
            redirect_uris=requested["redirect_uris"],
            post_logout_redirect_uris=requested["post_logout_redirect_uris"],
            grant_types=requested["grant_types"],
            scope=requested["scope"],
            id_token_signed_response_alg=requested["id_token_signed_response_alg"] or "",
            # Omitted: the type stays (a new type would change every `sub` the client knows).
            subject_type=requested["subject_type"],
            sector_identifier_uri=requested["sector_identifier_uri"] or "",
            backchannel_logout_uri=requested["backchannel_logout_uri"],
            backchannel_logout_session_required=requested["backchannel_logout_session_required"],
            frontchannel_logout_uri=requested["frontchannel_logout_uri"],
            frontchannel_logout_session_required=requested["frontchannel_logout_session_required"],
        )
    except (ClientError, PrivilegeError) as exc:
        raise metadata_error(exc) from None
    # The server MAY rotate the token (section 2.2); doing so limits a leaked one's life.
    registration_token = new_token()
    client.registration_access_token_hash = hash_secret(registration_token)
    return client_information(client, registration_token)


def delete_client(client_id: str, registration_token: str | None) -> None:
    """RFC 7592 section 2.3: deprovision the client; its codes, grants and tokens go with it.

    Codes, grants, refresh tokens and consents are deleted by the database (ON DELETE
    CASCADE), and an access token whose grant is gone counts as revoked (oauth.tokens).
    """
    client = authorized_client(client_id, registration_token)
    _check_may_manage(client)
    _audit("client.deleted", client, {"name": client.name})
    invalidate_on_commit(client_id)
    db.session.delete(client)
    logger.info("client deleted through RFC 7592: client_id=%s", client_id)


def authorized_client(client_id: str, registration_token: str | None) -> Client:
    """RFC 7592 section 2: the client whose registration access token this is, else 401.

    An unknown client, a client registered by other means and another client's token
    all get the same 401, so the endpoint tells nothing about which client_ids exist.
    """
    if not registration_token:
        raise unauthorized("a registration access token is required", missing=True)
    client = get_client(client_id)
    expected = client.registration_access_token_hash if client is not None else None
    matches = same_secret(expected or NO_HASH, hash_secret(registration_token))
    if client is None or expected is None or not matches:
        raise unauthorized("the registration access token is invalid")
    return client


def _check_may_manage(client: Client) -> None:
    """RFC 7592 sections 2.2 and 2.3: 403 for a client holding more than the registration
    policy (an admin gave it roles or made it first-party): only an admin changes it now."""
    try:
        services.require_may_manage(DYNAMIC_REGISTRATION, client)
    except PrivilegeError:
        raise RegistrationError(
            403,
            "access_denied",
            "this client was given more than self-service registration allows; "
            "an administrator manages it",
        ) from None


def _check_update_request(client: Client, metadata: Any) -> None:
    """RFC 7592 section 2.2: no server fields, the same client_id, the current secret if sent."""
    if not isinstance(metadata, dict):
        raise RegistrationError(400, "invalid_request", "the body must be a JSON object")
    for name in SERVER_FIELDS:
        if name in metadata:
            raise RegistrationError(400, "invalid_request", f"{name} must not be sent")
    if metadata.get("client_id") != client.client_id:
        raise RegistrationError(400, "invalid_request", "client_id must be this client's")
    if "client_secret" in metadata:
        secret = metadata["client_secret"]
        expected = client.client_secret_hash or NO_HASH
        if not isinstance(secret, str) or not same_secret(expected, hash_secret(secret)):
            raise RegistrationError(400, "invalid_request", "client_secret does not match")


# Metadata


def requested_metadata(metadata: Any) -> dict[str, Any]:
    """RFC 7591 section 2: the metadata we register, with its defaults; unknown fields ignored.

    Returns keyword arguments for `create_client` (client_name included). Only the
    fields our clients have are read; contacts, logo_uri, client_uri and the rest are
    ignored as section 2 allows. Values are type-checked here and validated there.
    """
    if not isinstance(metadata, dict):
        raise RegistrationError(400, "invalid_client_metadata", "the body must be a JSON object")
    grant_types = _strings(metadata, "grant_types", list(capabilities.DEFAULT_GRANT_TYPES))
    response_types = _strings(
        metadata, "response_types", capabilities.response_types_for(grant_types)
    )
    _check_response_types(response_types, grant_types)
    scope = _string(metadata, "scope", DEFAULT_SCOPE) or ""
    _check_scope_allowed(scope)
    return {
        "client_name": _string(metadata, "client_name", None),
        "redirect_uris": _strings(metadata, "redirect_uris", []),
        "post_logout_redirect_uris": _strings(metadata, "post_logout_redirect_uris", []),
        "grant_types": grant_types,
        "scope": scope,
        "token_endpoint_auth_method": _string(
            metadata, "token_endpoint_auth_method", capabilities.DEFAULT_CLIENT_AUTH_METHOD
        ),
        "id_token_signed_response_alg": _string(metadata, "id_token_signed_response_alg", None),
        # OIDC Registration 1.0 section 2; the server's default type when omitted.
        "subject_type": _string(metadata, "subject_type", None),
        "sector_identifier_uri": _string(metadata, "sector_identifier_uri", None),
        # Back-Channel / Front-Channel Logout 1.0 section 2: absent means none (RFC 7592
        # section 2.2 replaces every value).
        "backchannel_logout_uri": _string(metadata, "backchannel_logout_uri", "") or "",
        "backchannel_logout_session_required": _boolean(
            metadata, "backchannel_logout_session_required"
        ),
        "frontchannel_logout_uri": _string(metadata, "frontchannel_logout_uri", "") or "",
        "frontchannel_logout_session_required": _boolean(
            metadata, "frontchannel_logout_session_required"
        ),
    }


def _check_response_types(response_types: list[str], grant_types: list[str]) -> None:
    """RFC 7591 section 2.1: only "code", and only together with authorization_code."""
    for response_type in response_types:
        if response_type not in capabilities.RESPONSE_TYPES:
            raise RegistrationError(
                400, "invalid_client_metadata", f"unsupported response_type {response_type!r}"
            )
    if sorted(set(response_types)) != sorted(set(capabilities.response_types_for(grant_types))):
        raise RegistrationError(
            400,
            "invalid_client_metadata",
            'response_types ["code"] and the authorization_code grant go together',
        )


def _check_scope_allowed(scope: str) -> None:
    """Self-registered clients never get the admin API's scope."""
    refused = FORBIDDEN_SCOPES.intersection(scope.split())
    if refused:
        raise RegistrationError(
            400,
            "invalid_client_metadata",
            f"scope {sorted(refused)[0]!r} cannot be registered dynamically",
        )


def _strings(metadata: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = metadata.get(name)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RegistrationError(
            400, "invalid_client_metadata", f"{name} must be an array of strings"
        )
    return value


def _boolean(metadata: dict[str, Any], name: str) -> bool:
    """A boolean member; absent is false (the default of every boolean we register)."""
    value = metadata.get(name, False)
    if not isinstance(value, bool):
        raise RegistrationError(400, "invalid_client_metadata", f"{name} must be a boolean")
    return value


def _string(metadata: dict[str, Any], name: str, default: str | None) -> str | None:
    value = metadata.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise RegistrationError(400, "invalid_client_metadata", f"{name} must be a string")
    return value


def metadata_error(exc: ValueError) -> RegistrationError:
    """RFC 7591 section 3.2.2: invalid_redirect_uri for redirection URIs, else metadata."""
    message = str(exc)
    # clients.services names the offending field first ("redirect_uri 'http://...' must ...").
    if message.startswith(("redirect_uri", "post_logout_redirect_uri")) or (
        "needs at least one redirect URI" in message
    ):
        return RegistrationError(400, "invalid_redirect_uri", message)
    return RegistrationError(400, "invalid_client_metadata", message)


def unauthorized(description: str, *, missing: bool = False) -> RegistrationError:
    """RFC 6750 section 3.1: 401 with a Bearer challenge (no error code when no token came)."""
    challenge = (
        "Bearer" if missing else f'Bearer error="invalid_token", error_description="{description}"'
    )
    return RegistrationError(401, "invalid_token", description, {"WWW-Authenticate": challenge})


# Responses


def client_information(
    client: Client, registration_token: str, secret: str | None = None
) -> dict[str, Any]:
    """RFC 7591 section 3.2.1 and RFC 7592 section 3: the client information response."""
    body: dict[str, Any] = {"client_id": client.client_id}
    if secret is not None:
        body["client_secret"] = secret
    if client.token_endpoint_auth_method != capabilities.NONE:
        body["client_secret_expires_at"] = 0
    body.update(client_metadata(client, management=False))
    body["registration_access_token"] = registration_token
    body["registration_client_uri"] = registration_client_uri(client.client_id)
    return body


def registration_client_uri(client_id: str) -> str:
    """RFC 7592 section 3: the client configuration endpoint of this client."""
    return f"{current_app.config['AUTHSERVER'].issuer}/oauth2/register/{client_id}"


def _audit(event: str, client: Client, details: dict[str, Any]) -> None:
    """Add the audit event to the session; the caller's commit stores it."""
    record(
        event,
        actor=client.client_id,
        actor_type="client",
        subject=client.client_id,
        client_id=client.client_id,
        details=details,
    )
