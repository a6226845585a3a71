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
    check_frontchannel_origin,
    check_logout_metadata,
    check_redirect_uris,
    check_resources,
    check_scope,
    check_web_origins,
    unique,
)
from .models import Client

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
    **logout: Unpack[LogoutMetadata],
) -> tuple[Client, str | None]:
    """Validate the metadata and register a client; returns it and its secret (None if public).

    Its roles, first-party status and own-token scopes must lie within what the actor
    could hold itself (roles.ceiling; PrivilegeError otherwise).
    """
    auth_method = token_endpoint_auth_method
    grants, redirects = _check_flows(grant_types, auth_method, redirect_uris)
    checked_scope = check_scope(scope)
    held = _check_roles(roles)
    require_may_hold(actor, held, bool(skip_consent), grants, checked_scope)
    client = Client(
        client_id=new_client_id(),
        name=_check_name(name),
        redirect_uris=redirects,
        post_logout_redirect_uris=_check_post_logout_redirect_uris(post_logout_redirect_uris),
        grant_types=grants,
        response_types=capabilities.response_types_for(grants),
        scope=checked_scope,
        token_endpoint_auth_method=auth_method,
        id_token_signed_response_alg=_check_id_token_alg(id_token_signed_response_alg),
        resources=check_resources(resources),
        web_origins=check_web_origins(web_origins),
        skip_consent=bool(skip_consent),
        is_resource_server=bool(is_resource_server),
        **check_logout_metadata(logout, redirect_uris=redirects),
    )
    client.roles = held
    secret = _give_secret(client)
    db.session.add(client)
    db.session.flush()  # its id and created_at, for the caller's answer; the caller commits
    invalidate_on_commit(client.client_id)
    logger.info("client registered: client_id=%s name=%r", client.client_id, client.name)
    return client, secret


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
    # "" removes it (RFC 7592 section 2.2 replaces every value).
    id_token_signed_response_alg: str | None


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
    grants, redirects = _check_flows(
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
    changes.update(check_logout_metadata(metadata))
    frontchannel = changes.get("frontchannel_logout_uri", client.frontchannel_logout_uri)
    check_frontchannel_origin(frontchannel, redirects)
    return changes


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
            }
        )
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


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ClientError("client_name must not be empty")
    if len(name) > 200:
        raise ClientError("client_name must be at most 200 characters")
    return name


def _check_flows(
    grant_types: Iterable[str], auth_method: str, redirect_uris: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The grant types (allowed with this authentication method) and the redirect URIs,
    at least one of which the authorization_code grant needs."""
    grants = _check_grant_types(grant_types)
    _check_auth_method(auth_method, grants)
    redirects = check_redirect_uris(redirect_uris, "redirect_uri")
    if "authorization_code" in grants and not redirects:
        raise ClientError("the authorization_code grant needs at least one redirect URI")
    return grants, redirects


def _check_grant_types(grant_types: Iterable[str]) -> list[str]:
    grants = unique(grant_types)
    if not grants:
        raise ClientError("at least one grant_type is required")
    for grant in grants:
        if grant not in capabilities.GRANT_TYPES:
            raise ClientError(
                f"unsupported grant_type {grant!r}; "
                f"expected one of {', '.join(capabilities.GRANT_TYPES)}"
            )
    return grants


def _check_auth_method(method: str, grants: list[str]) -> str:
    """RFC 7591 section 2: a public client ("none") cannot use client_credentials."""
    if method not in capabilities.CLIENT_AUTH_METHODS:
        raise ClientError(
            f"unsupported token_endpoint_auth_method {method!r}; "
            f"expected one of {', '.join(capabilities.CLIENT_AUTH_METHODS)}"
        )
    for grant in grants:
        if method not in capabilities.auth_methods_for_grant(grant):
            raise ClientError(
                f"a public client (token_endpoint_auth_method {method}) cannot use {grant}"
            )
    return method


def _check_id_token_alg(alg: str | None) -> str | None:
    """OpenID Connect Registration section 2: id_token_signed_response_alg, never none."""
    if alg is None or alg == "":
        return None
    if alg not in capabilities.ID_TOKEN_SIGNING_ALGS:
        raise ClientError(
            f"unsupported id_token_signed_response_alg {alg!r}; "
            f"expected one of {', '.join(capabilities.ID_TOKEN_SIGNING_ALGS)}"
        )
    return alg


def _check_post_logout_redirect_uris(uris: Iterable[str]) -> list[str]:
    return check_redirect_uris(uris, "post_logout_redirect_uri")


# The checks of the fields an update changes only when given, in the order applied.
_OPTIONAL_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _check_name,
    "post_logout_redirect_uris": _check_post_logout_redirect_uris,
    "web_origins": check_web_origins,
    "resources": check_resources,
    "is_resource_server": bool,
    "id_token_signed_response_alg": _check_id_token_alg,
}
