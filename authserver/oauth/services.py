"""Grants and the tokens issued under them: create, issue, revoke.

These functions add rows to the session and leave committing to the caller,
so a token response is sent only after every row behind it is committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError
from flask import Flask, current_app
from sqlalchemy import select, update

from ..accounts.models import User
from ..accounts.services import sub_of
from ..accounts.signals import signed_out_everywhere
from ..audit import record
from ..clients.cache import OAuthClient
from ..core.secrets import hash_secret, new_hex_id, new_token
from ..extensions import db, utcnow
from ..oidc.claims import claims_for
from ..oidc.subjects import subject_for
from ..orgs.services import ORG_SCOPE_PREFIX, member_slugs, organization_claims
from ..roles import ceiling
from .errors import InvalidTargetError
from .models import AuthorizationCode, DeviceCode, Grant, RefreshToken
from .tokens import issue_access_token


def audience_for(resources: list[str] | None) -> str | list[str]:
    """RFC 8707 section 2: the requested resources, else the configured default audience."""
    if not resources:
        return str(current_app.config["AUTHSERVER"].audience)
    return resources[0] if len(resources) == 1 else list(resources)


def start_token_family(
    credential: AuthorizationCode | DeviceCode, client: OAuthClient, user: User
) -> tuple[Grant, dict[str, Any]]:
    """A redeemed code or approved device code: its grant (token family) and first tokens."""
    assert credential.auth_time is not None
    code = credential if isinstance(credential, AuthorizationCode) else None
    grant = create_grant(
        client_id=client.client_id,
        user_id=user.id,
        scope=credential.scope,
        auth_time=credential.auth_time,
        amr=list(credential.amr or []),
        acr=credential.acr,
        resource=credential.resource,
        claims=code.claims if code is not None else None,
        session_id=credential.session_id,
        organization_id=code.organization_id if code is not None else None,
    )
    token = issue_user_tokens(
        grant=grant,
        client=client,
        user=user,
        scope=credential.scope,
        include_refresh_token=wants_refresh_token(client, credential.scope),
    )
    return grant, token


GRANT_EXPIRY_SLACK = timedelta(days=1)


def wants_refresh_token(client: OAuthClient, scope: str) -> bool:
    """A refresh token for clients allowed the grant; for OpenID requests only with offline_access.

    OpenID Connect Core section 11: offline access is asked for with `offline_access`.
    """
    if not client.check_grant_type("refresh_token"):
        return False
    scopes = scope.split()
    return "offline_access" in scopes or "openid" not in scopes


def create_grant(
    *,
    client_id: str,
    user_id: int,
    scope: str,
    auth_time: datetime,
    amr: list[str],
    acr: str | None = None,
    resource: list[str] | None = None,
    claims: dict[str, Any] | None = None,
    session_id: str | None = None,
    organization_id: int | None = None,
) -> Grant:
    """A new token family for one authorization by one person."""
    config = current_app.config["AUTHSERVER"]
    grant = Grant(
        id=new_hex_id(16),
        client_id=client_id,
        user_id=user_id,
        scope=scope,
        auth_time=auth_time,
        amr=amr,
        acr=acr,
        resource=resource,
        claims=claims,
        session_id=session_id,
        organization_id=organization_id,
        expires_at=utcnow() + timedelta(seconds=config.access_token_ttl),
    )
    db.session.add(grant)
    return grant


def issue_user_tokens(
    *,
    grant: Grant,
    client: OAuthClient,
    user: User,
    scope: str,
    include_refresh_token: bool,
    parent_id: int | None = None,
) -> dict[str, Any]:
    """RFC 6749 section 5.1: the token response for a person's grant (`parent_id`: see
    RefreshToken)."""
    scope = limit_user_scope(user, scope)
    access_token, expires_in = issue_access_token(
        client_id=client.client_id,
        # RFC 9068 section 2.2 and OIDC Core section 8: the `sub` the client knows.
        subject=subject_for(user, client),
        scope=scope,
        audience=audience_for(grant.resource),
        grant_id=grant.id,
        auth_time=int(grant.auth_time.timestamp()),
        extra=_person_claims(grant, user, scope) or None,
    )
    token: dict[str, Any] = {
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": scope,
    }
    now = utcnow()
    if include_refresh_token:
        token["refresh_token"] = _add_refresh_token(grant, client, parent_id, now)
    else:
        grant.expires_at = max(grant.expires_at, now + timedelta(seconds=expires_in))
    return token


def _add_refresh_token(
    grant: Grant, client: OAuthClient, parent_id: int | None, now: datetime
) -> str:
    """A new refresh token of the grant (stored hashed), and the grant kept alive with it."""
    value = new_token()
    expires_at = now + timedelta(seconds=current_app.config["AUTHSERVER"].refresh_token_ttl)
    db.session.add(
        RefreshToken(
            token_hash=hash_secret(value),
            grant_id=grant.id,
            client_id=client.client_id,
            scope=grant.scope,
            expires_at=expires_at,
            parent_id=parent_id,
        )
    )
    if grant.expires_at < expires_at:
        # The grant outlives its newest refresh token (cleanup deletes expired grants);
        # extended with a day to spare, so a rotation rarely has to write the grant too.
        grant.expires_at = expires_at + GRANT_EXPIRY_SLACK
    return value


def _person_claims(grant: Grant, user: User, scope: str) -> dict[str, Any]:
    """What an access token says about the person: what `oidc.claims` releases to it.

    `roles` with the `roles` scope; `org_id` and `org_roles` with the grant's own
    `org:<slug>` scope. Never more than the token's `scope` covers.
    """
    organization = organization_claims(grant.organization_id, user)
    if organization is None:
        # Removed from the organization since: the grant no longer speaks for it.
        raise InvalidGrantError("The person is no longer a member of the organization.")
    return claims_for(user, scope, "access_token", organization)


def limit_user_scope(user: User, scope: str) -> str:
    """RFC 6749 section 3.3: drop the scopes this person may not have, silently.

    `admin` only for staff (roles.ceiling.may_obtain_scope: the one rule of who may obtain
    it); `org:<slug>` only for members of that organization. The token response always
    states the granted `scope`.
    """
    items = scope.split()
    wants_org = any(item.startswith(ORG_SCOPE_PREFIX) for item in items)
    slugs = member_slugs(user) if wants_org else set()
    power = ceiling.power_of_person(user)
    kept = []
    for item in items:
        if item.startswith(ORG_SCOPE_PREFIX):
            if item[len(ORG_SCOPE_PREFIX) :] not in slugs:
                continue
        elif not ceiling.may_obtain_scope(power, slugs, item):
            continue
        kept.append(item)
    return " ".join(kept)


def client_scope(client: OAuthClient, requested: str | None) -> str:
    """The requested scopes the client is registered for; `org:*` allows every `org:<slug>`."""
    allowed = set(client.get_allowed_scope(requested).split())
    any_org = ORG_SCOPE_PREFIX + "*" in client.scopes
    kept: list[str] = []
    for item in (requested or "").split():
        is_org = item.startswith(ORG_SCOPE_PREFIX) and item != ORG_SCOPE_PREFIX + "*"
        if (item in allowed or (any_org and is_org)) and item not in kept:
            kept.append(item)
    return " ".join(kept)


def revoke_grant(grant_id: str | None) -> None:
    """Revoke a whole token family: its refresh tokens and every access token issued under it."""
    if not grant_id:
        return
    now = utcnow()
    db.session.execute(
        update(Grant).where(Grant.id == grant_id, Grant.revoked_at.is_(None)).values(revoked_at=now)
    )
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_all_grants(*, user_id: int | None = None, client_id: str | None = None) -> list[str]:
    """Revoke every live grant of a person, of a client, or of a person with a client.

    RFC 7009 section 2.1: revoking a grant ends its refresh tokens and every access token
    issued under it. The one bulk revocation (a new password, a disabled account, a
    disabled or deleted client, an app the person disconnected); no commit. Returns the
    ids of the grants revoked.
    """
    if user_id is None and client_id is None:
        raise ValueError("revoke_all_grants needs a user_id, a client_id or both")
    live = select(Grant.id).where(Grant.revoked_at.is_(None))
    if user_id is not None:
        live = live.where(Grant.user_id == user_id)
    if client_id is not None:
        live = live.where(Grant.client_id == client_id)
    grant_ids = list(db.session.scalars(live))
    if grant_ids:
        now = utcnow()
        db.session.execute(
            update(Grant)
            .where(Grant.id.in_(grant_ids), Grant.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        db.session.execute(
            update(RefreshToken)
            .where(RefreshToken.grant_id.in_(grant_ids), RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    return grant_ids


def revoke_grants_of_person(user: User, **_: Any) -> None:
    """Receiver of accounts.signals.signed_out_everywhere: the person's grants end too."""
    revoke_all_grants(user_id=user.id)


def connect_signals(app: Flask) -> None:
    """Subscribe to what accounts announces (accounts cannot import oauth); idempotent."""
    signed_out_everywhere.connect(revoke_grants_of_person)


def sub_of_grant(grant_id: str | None) -> str | None:
    """The `sub` of the person a grant (token family) belongs to, for an audit event."""
    grant = db.session.get(Grant, grant_id) if grant_id is not None else None
    return sub_of(grant.user_id) if grant is not None else None


def check_resources(client: OAuthClient, values: list[str]) -> list[str]:
    """RFC 8707 section 2: every requested resource must be registered for the client."""
    resources: list[str] = []
    for value in values:
        if value not in client.resources:
            # Not echoed: RFC 6749 section 5.2 limits error_description to printable ASCII
            # without quote or backslash, and Authlib raises ValueError on anything else.
            raise InvalidTargetError("A requested resource is not allowed for this client.")
        if value not in resources:
            resources.append(value)
    return resources


def revoke_replayed_grant(event: str, grant_id: str | None, client_id: str) -> None:
    """A one-time credential came back: revoke its whole grant, record it, commit.

    RFC 6749 section 4.1.2 (code replay) and RFC 9700 section 4.14.2 (refresh-token
    reuse). Whatever the failed request had written is rolled back first.
    """
    db.session.rollback()
    revoke_grant(grant_id)
    record(
        event,
        actor=client_id,
        actor_type="client",
        subject=sub_of_grant(grant_id),
        client_id=client_id,
        details={"grant_id": grant_id},
    )
    db.session.commit()
