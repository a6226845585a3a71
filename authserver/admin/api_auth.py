"""Who is calling the admin API: bearer access tokens (RFC 6750) and the permissions behind them.

The pipeline, one small step each:
  bearer_token   RFC 6750 section 2.1: the token from the Authorization header
  verified       RFC 9068 section 4: our signature, issuer, expiry, audience; not revoked
  check_scope    the `admin` scope (its issuance is limited to staff elsewhere)
  principal      a person's token (under a grant): the person's live roles, within the
                 roles of the client the token was issued to (roles.ceiling);
                 a service's token (client_credentials, sub == client_id): its client's
                 roles, when the client is active and registered with the `admin` scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from ..accounts.models import User
from ..audit.actor import Actor
from ..clients.models import Client
from ..clients.services import get_client
from ..extensions import db
from ..oauth.models import Grant
from ..oauth.tokens import AccessToken, verify_access_token
from ..oidc.subjects import is_subject_of
from ..roles import ceiling
from ..roles.ceiling import client_actor, person_actor
from ..roles.permissions import allows

ADMIN_SCOPE = ceiling.ADMIN_SCOPE
REALM = "admin"


class ApiError(Exception):
    """An error answered as JSON `{"error", "error_description"}` with this status."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = headers or {}


@dataclass(frozen=True)
class Principal:
    """The caller: a person or a service (`actor`), the client it came through, what it may do."""

    actor: Actor
    client_id: str
    permissions: frozenset[str]

    def can(self, permission: str) -> bool:
        return allows(self.permissions, permission)


def authenticate(authorization: str | None) -> Principal:
    """Run the whole pipeline; raises ApiError (401 or 403) when the caller may not come in."""
    access = verified(bearer_token(authorization))
    check_scope(access)
    return principal(access)


def bearer_token(authorization: str | None) -> str:
    """RFC 6750 section 2.1: `Authorization: Bearer <token>`; no credentials -> 401 without code.

    RFC 6750 section 3.1: a request without authentication information gets no error code.
    """
    if not authorization:
        raise ApiError(401, "unauthorized", "an access token is required", _challenge())
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid_request("the Authorization header must be `Bearer <access token>`")
    return token


def verified(token: str) -> AccessToken:
    """RFC 9068 section 4: a live token of ours, not revoked, issued for this server."""
    access = verify_access_token(token)
    if access is None:
        raise _invalid_token("the access token is invalid, expired or revoked")
    audience = access.claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if current_app.config["AUTHSERVER"].audience not in audiences:
        raise _invalid_token("the access token was not issued for this server")
    return access


def check_scope(access: AccessToken) -> None:
    """RFC 6750 section 3.1: insufficient_scope (403) without the `admin` scope."""
    if ADMIN_SCOPE not in access.scopes:
        raise ApiError(
            403,
            "insufficient_scope",
            "the access token needs the admin scope",
            _challenge(
                error="insufficient_scope",
                error_description="the access token needs the admin scope",
                scope=ADMIN_SCOPE,
            ),
        )


def principal(access: AccessToken) -> Principal:
    """The person behind a grant, or the service that asked for a token for itself."""
    if access.grant_id is not None:
        return _person(access)
    client_id = str(access.claims.get("client_id", ""))
    if access.claims["sub"] == client_id:
        return _service(client_id)
    raise _invalid_token("the access token does not name a person or a service")


def _person(access: AccessToken) -> Principal:
    """A person's token: their roles are read now, so a demotion counts at once.

    The person acts within the roles of the client the token was issued to: a tool
    registered without roles carries no one's power, whoever signs in to it.
    """
    grant = db.session.get(Grant, access.grant_id)
    user = db.session.get(User, grant.user_id) if grant is not None else None
    client_id = str(access.claims.get("client_id", ""))
    client = _active_client(client_id)
    # OIDC Core section 8: the token names the person as its client knows them.
    if user is None or not user.is_active or not is_subject_of(access.claims["sub"], user, client):
        raise _invalid_token("the person behind this access token cannot act")
    actor = person_actor(user, within=ceiling.power_of_service(client))
    return Principal(actor, client_id, actor.power)


def _service(client_id: str) -> Principal:
    """A client_credentials token: the power of the roles of an active client registered
    with `admin`, never more."""
    client = _active_client(client_id)
    if ADMIN_SCOPE not in (client.scope or "").split():
        raise ApiError(403, "forbidden", "this client is not allowed to administer the server")
    actor = client_actor(client)
    return Principal(actor, client_id, actor.power)


def _active_client(client_id: str) -> Client:
    """The active client a token was issued to; 401 invalid_token otherwise."""
    client = get_client(client_id)
    if client is None or not client.is_active:
        raise _invalid_token("the client behind this access token is not active")
    return client


def _invalid_token(description: str) -> ApiError:
    """RFC 6750 section 3.1: invalid_token is answered with 401."""
    return ApiError(
        401,
        "invalid_token",
        description,
        _challenge(error="invalid_token", error_description=description),
    )


def _invalid_request(description: str) -> ApiError:
    """RFC 6750 section 3.1: invalid_request is answered with 400."""
    return ApiError(
        400,
        "invalid_request",
        description,
        _challenge(error="invalid_request", error_description=description),
    )


def _challenge(**params: Any) -> dict[str, str]:
    """RFC 6750 section 3: the WWW-Authenticate header, realm first."""
    parts = [f'realm="{REALM}"'] + [f'{name}="{value}"' for name, value in params.items()]
    return {"WWW-Authenticate": "Bearer " + ", ".join(parts)}
