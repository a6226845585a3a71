"""Register and manage clients: validation of their metadata, secrets, look-ups.

Metadata names follow RFC 7591 (OAuth 2.0 Dynamic Client Registration). Every
rule is checked here, once, so the CLI, the admin console and any future
registration endpoint refuse the same things with the same messages. Every change
names its `actor` and goes through the privilege ceiling (`roles.ceiling`): a client
is never given, nor changed by, more than the actor holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any, Unpack

from sqlalchemy import Text, cast, select

from ..accounts.models import Role
from ..accounts.services import get_user_by_sub
from ..audit import record
from ..audit.actor import Actor
from ..core import capabilities
from ..core.secrets import hash_secret, new_token
from ..extensions import db, precise_utcnow
from ..orgs.services import member_slugs
from ..roles import ceiling
from ..roles.services import RoleError, find_roles
from .cache import invalidate_on_commit
from .metadata import (
    ClientError,
    LogoutMetadata,
    check_flows,
    check_frontchannel_origin,
    check_id_token_alg,
    check_logout_metadata,
    check_name,
    check_post_logout_redirect_uris,
    check_refresh_token_grace_period,
    check_resources,
    check_scope,
    check_web_origins,
)
from .models import Client
from .sector import check_subject

logger = logging.getLogger(__name__)


def create_client(
    *,
    actor: Actor,
    name: str,
    redirect_uris: Iterable[str] = (),
    post_logout_redirect_uris: Iterable[str] = (),
    grant_types: Iterable[str],
    scope: str,
    token_endpoint_auth_method: str,
    resources: Iterable[str] = (),
    web_origins: Iterable[str] = (),
    skip_consent: bool = False,
    id_token_signed_response_alg: str | None = None,
    roles: Iterable[str] = (),
    is_resource_server: bool = False,
    **options: Unpack[ClientOptions],
) -> tuple[Client, str | None]:
    """Validate the metadata and register a client; returns it and its secret (None if public).

    Its roles, first-party status and own-token scopes lie within the actor (roles.ceiling).
    """
    grants, redirects = check_flows(grant_types, token_endpoint_auth_method, redirect_uris)
    checked_options = _check_options(options, redirects)
    checked_scope = check_scope(scope)
    held = _check_roles(roles)
    require_may_hold(actor, held, bool(skip_consent), grants, checked_scope)
    client = Client(
        client_id=new_client_id(),
        name=check_name(name),
        redirect_uris=redirects,
        post_logout_redirect_uris=check_post_logout_redirect_uris(post_logout_redirect_uris),
        grant_types=grants,
        response_types=capabilities.response_types_for(grants),
        scope=checked_scope,
        token_endpoint_auth_method=token_endpoint_auth_method,
        id_token_signed_response_alg=check_id_token_alg(id_token_signed_response_alg),
        resources=check_resources(resources),
        web_origins=check_web_origins(web_origins),
        skip_consent=bool(skip_consent),
        is_resource_server=bool(is_resource_server),
        **checked_options,
    )
    # Last: it may fetch the sector_identifier_uri, once everything local is known good.
    client.subject_type, client.sector_identifier_uri = check_subject(
        options.get("subject_type"), options.get("sector_identifier_uri"), redirects
    )
    client.roles = held
    secret = _give_secret(client)
    _add_new(client)
    return client, secret


class ClientOptions(LogoutMetadata, total=False):
    """How the server treats a client beyond RFC 7591's core metadata; absent: the default."""

    # The claims of the granted scopes go in the id_token too (oidc/claims.py).
    claims_in_id_token: bool
    # oauth/grants/refresh_token.py: a rotated refresh token's grace, 0 for none.
    refresh_token_grace_period_seconds: int
    # OIDC Core section 8 (clients/sector.py); None: the server's default type.
    subject_type: str | None
    sector_identifier_uri: str | None


def _check_options(options: ClientOptions, redirects: list[str]) -> dict[str, Any]:
    """The new client's options as column values, each checked (the subject apart: it may
    fetch, so `create_client` checks it last)."""
    grace = options.get("refresh_token_grace_period_seconds") or 0
    return {
        "claims_in_id_token": bool(options.get("claims_in_id_token")),
        "refresh_token_grace_period_seconds": check_refresh_token_grace_period(grace),
        **check_logout_metadata(options, redirect_uris=redirects),
    }


def _add_new(client: Client) -> None:
    """Add a registered client to the session; the caller commits."""
    db.session.add(client)
    db.session.flush()  # its id and created_at, for the caller's answer
    invalidate_on_commit(client.client_id)
    logger.info("client registered: client_id=%s name=%r", client.client_id, client.name)


def _give_secret(client: Client) -> str | None:
    """A new secret for a confidential client (stored hashed); None for a public one."""
    if client.token_endpoint_auth_method == capabilities.NONE:
        return None
    secret = new_token()
    client.client_secret_hash = hash_secret(secret)
    return secret


class ClientChanges(LogoutMetadata, total=False):
    """Metadata an update may change; a missing or None value keeps what the client has."""

    name: str | None
    redirect_uris: Iterable[str] | None
    post_logout_redirect_uris: Iterable[str] | None
    grant_types: Iterable[str] | None
    scope: str | None
    skip_consent: bool | None
    web_origins: Iterable[str] | None
    resources: Iterable[str] | None
    is_resource_server: bool | None
    claims_in_id_token: bool | None
    refresh_token_grace_period_seconds: int | None
    # "" removes it (RFC 7592 section 2.2 replaces every value).
    id_token_signed_response_alg: str | None
    # OIDC Core section 8; "" removes the sector_identifier_uri.
    subject_type: str | None
    sector_identifier_uri: str | None


def update_client(
    client: Client,
    *,
    actor: Actor,
    roles: Iterable[str] | None = None,
    event: str = "client.updated",
    **metadata: Unpack[ClientChanges],
) -> list[str]:
    """The one way to change a client (console, admin API, RFC 7592 section 2.2).

    Checks the metadata by the rules of `create_client`; the actor must hold the client
    as it is and as it will be (roles.ceiling; PrivilegeError). Records `event` in the
    audit log and drops the cached snapshot when the caller commits. Returns the names
    of the fields that changed.
    """
    require_may_manage(actor, client)
    changes = _checked_changes(client, metadata)
    held = _check_roles(roles) if roles is not None else list(client.roles)
    require_may_hold(actor, held, changes["skip_consent"], changes["grant_types"], changes["scope"])
    changed = sorted(key for key, value in changes.items() if getattr(client, key) != value)
    for key in changed:
        setattr(client, key, changes[key])
    if {role.name for role in held} != set(client.role_names):
        client.roles = held
        changed.append("roles")
    _audit(event, actor, client, {"changed": changed})
    invalidate_on_commit(client.client_id)
    return changed


def _checked_changes(client: Client, metadata: ClientChanges) -> dict[str, Any]:
    """The new values of the given fields, and of those that depend on them, checked."""
    grant_types, redirect_uris = metadata.get("grant_types"), metadata.get("redirect_uris")
    grants, redirects = check_flows(
        grant_types if grant_types is not None else client.grant_types,
        client.token_endpoint_auth_method,
        redirect_uris if redirect_uris is not None else client.redirect_uris,
    )
    scope, skip_consent = metadata.get("scope"), metadata.get("skip_consent")
    changes: dict[str, Any] = {
        "grant_types": grants,
        "response_types": capabilities.response_types_for(grants),
        "redirect_uris": redirects,
        "scope": check_scope(scope) if scope is not None else client.scope,
        "skip_consent": client.skip_consent if skip_consent is None else bool(skip_consent),
    }
    for key, check in _OPTIONAL_CHECKS.items():
        value = metadata.get(key)
        if value is not None:
            changes[key] = check(value)
    changes.update(_subject_changes(client, metadata, redirects))
    changes.update(check_logout_metadata(metadata))
    frontchannel = changes.get("frontchannel_logout_uri", client.frontchannel_logout_uri)
    check_frontchannel_origin(frontchannel, redirects)
    return changes


def _subject_changes(
    client: Client, metadata: ClientChanges, redirects: list[str]
) -> dict[str, Any]:
    """The subject type and sector_identifier_uri, checked again (and the document fetched
    again) only when they or the redirect URIs change, so an unrelated edit never depends
    on another host being up."""
    subject_type = metadata.get("subject_type") or client.subject_type
    uri = metadata.get("sector_identifier_uri")
    sector_uri = client.sector_identifier_uri if uri is None else (uri or None)
    current = (client.subject_type, client.sector_identifier_uri, list(client.redirect_uris))
    if (subject_type, sector_uri, redirects) == current:
        return {}
    subject_type, sector_uri = check_subject(subject_type, sector_uri, redirects)
    return {"subject_type": subject_type, "sector_identifier_uri": sector_uri}


def rotate_secret(client: Client, *, actor: Actor) -> str:
    """Give a confidential client a new secret; the old one, and every access token issued
    before now (`tokens_not_before`), stop working at once."""
    require_may_manage(actor, client)
    if client.token_endpoint_auth_method == capabilities.NONE:
        raise ClientError("a public client (token_endpoint_auth_method none) has no secret")
    secret = new_token()
    client.client_secret_hash = hash_secret(secret)
    client.tokens_not_before = precise_utcnow()
    invalidate_on_commit(client.client_id)
    logger.info("client secret rotated: client_id=%s", client.client_id)
    return secret


def require_may_manage(actor: Actor, client: Client) -> None:
    """Any write to an existing client needs all it holds (roles.ceiling); PrivilegeError."""
    grants, scope = list(client.grant_types or []), client.scope or ""
    ceiling.require_may_manage_client(actor, client, _memberships(actor, grants, scope))


def require_may_hold(
    actor: Actor, roles: list[Role], skip_consent: bool, grant_types: list[str], scope: str
) -> None:
    """A client with these roles, first-party status and own-token scopes lies within the actor."""
    ceiling.require_may_hold_client(
        actor,
        _memberships(actor, grant_types, scope),
        roles=roles,
        skip_consent=skip_consent,
        grant_types=grant_types,
        scope=scope,
    )


def _memberships(actor: Actor, grant_types: list[str], scope: str) -> frozenset[str]:
    """The slugs of a person actor's organizations, read only when the decision needs them."""
    if actor.type != "user" or not actor.id:
        return frozenset()
    if not ceiling.needs_memberships(actor, grant_types, scope):
        return frozenset()
    user = get_user_by_sub(actor.id)
    return frozenset(member_slugs(user)) if user is not None else frozenset()


def _check_roles(names: Iterable[str]) -> list[Role]:
    """The existing roles with these names (a client holds roles as a person does)."""
    try:
        return find_roles(names)
    except RoleError as exc:
        raise ClientError(str(exc)) from None


def list_clients() -> list[Client]:
    """Every registered client, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.id)))


def get_client(client_id: str) -> Client | None:
    """The client with this client_id, active or not."""
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def client_ids_with_post_logout_redirect_uri(uri: str) -> list[str]:
    """The active clients that registered exactly this post_logout_redirect_uri.

    A LIKE on the JSON text narrows the rows in SQL (the URI as JSON encodes it, with
    LIKE's wildcards escaped); the exact comparison is made on the decoded lists.
    """
    encoded = json.dumps(uri)
    escaped = encoded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    rows = db.session.execute(
        select(Client.client_id, Client.post_logout_redirect_uris).where(
            Client.is_active.is_(True),
            cast(Client.post_logout_redirect_uris, Text).like(pattern, escape="\\"),
        )
    ).all()
    return [row.client_id for row in rows if uri in (row.post_logout_redirect_uris or [])]


def client_metadata(client: Client, *, management: bool = True) -> dict[str, Any]:
    """The one serializer of a client: RFC 7591 section 3.2.1 metadata, never a secret.

    With `management` (the CLI and the admin API) it adds what only an administrator
    sets or sees; without (RFC 7592 responses) it holds the registered metadata alone.
    """
    metadata: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
    }
    if management:
        metadata.update(
            {
                "resources": list(client.resources),
                "web_origins": list(client.web_origins),
                "skip_consent": client.skip_consent,
                "is_active": client.is_active,
                "roles": client.role_names,
                # RFC 7662 section 4: may introspect access tokens issued to other clients.
                "is_resource_server": client.is_resource_server,
                # The claims of the granted scopes go in the id_token too (oidc/claims.py).
                "claims_in_id_token": client.claims_in_id_token,
                # oauth/grants/refresh_token.py: a rotated refresh token's grace, 0 for none.
                "refresh_token_grace_period_seconds": client.refresh_token_grace_period_seconds,
            }
        )
    # OIDC Registration section 2.
    metadata["subject_type"] = client.subject_type
    if client.sector_identifier_uri:
        metadata["sector_identifier_uri"] = client.sector_identifier_uri
    if client.id_token_signed_response_alg:
        metadata["id_token_signed_response_alg"] = client.id_token_signed_response_alg
    for prefix in ("backchannel", "frontchannel"):
        uri = getattr(client, f"{prefix}_logout_uri")
        if uri:
            metadata[f"{prefix}_logout_uri"] = uri
            required = bool(getattr(client, f"{prefix}_logout_session_required"))
            metadata[f"{prefix}_logout_session_required"] = required
    return metadata


def new_client_id() -> str:
    """A random client_id that never starts with "-", so command lines do not take it for a flag."""
    while True:
        client_id = new_token(18)
        if not client_id.startswith("-"):
            return client_id


def _audit(event: str, actor: Actor, client: Client, details: dict[str, Any]) -> None:
    """Add the audit event of a change to a client to the session (the caller commits)."""
    record(
        event,
        actor=actor.id,
        actor_type=actor.type,
        subject=client.client_id,
        client_id=client.client_id,
        details=details,
    )


# The checks of the fields an update changes only when given, in the order applied.
_OPTIONAL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": check_name,
    "post_logout_redirect_uris": check_post_logout_redirect_uris,
    "web_origins": check_web_origins,
    "resources": check_resources,
    "is_resource_server": bool,
    "claims_in_id_token": bool,
    "refresh_token_grace_period_seconds": check_refresh_token_grace_period,
    "id_token_signed_response_alg": check_id_token_alg,
}
