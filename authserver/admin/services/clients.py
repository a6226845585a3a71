"""Admin actions on clients: register, change, rotate the secret, disable, delete.

The rules of client metadata and the privilege ceiling live in `clients.services`;
these functions name the actor and audit under "admin.client.*"; the caller (the request or
CLI command, core.uow) commits.
"""

from __future__ import annotations

from typing import Any, Unpack

from ...audit.actor import Actor
from ...clients import services as clients
from ...clients.cache import invalidate_on_commit
from ...clients.metadata import ClientError
from ...clients.models import Client
from ...clients.services import ClientChanges
from ...extensions import db, precise_utcnow
from ...roles.ceiling import PrivilegeError
from .base import AdminError, audit, who
from .revocation import revoke_all_grants


def create_client_as_admin(
    *, actor: Actor | None = None, **metadata: Any
) -> tuple[Client, str | None]:
    """Register a client (clients.services.create_client); returns it and its secret, if any."""
    acting = who(actor)
    try:
        client, secret = clients.create_client(actor=acting, **metadata)
    except ClientError as exc:
        raise AdminError(str(exc)) from None
    audit(
        "admin.client.created",
        acting,
        subject=client.client_id,
        client_id=client.client_id,
        details={
            "name": client.name,
            "grant_types": list(client.grant_types),
            "roles": client.role_names,
        },
    )
    return client, secret


def update_client(
    client: Client,
    *,
    actor: Actor | None = None,
    roles: list[str] | None = None,
    **changes: Unpack[ClientChanges],
) -> Client:
    """Change the given metadata (None = keep) through clients.services.update_client, the
    one update service: the rules of registration and the privilege ceiling."""
    try:
        clients.update_client(
            client, actor=who(actor), roles=roles, event="admin.client.updated", **changes
        )
    except ClientError as exc:
        raise AdminError(str(exc)) from None
    return client


def may_manage_client(actor: Actor, client: Client) -> bool:
    """Whether the actor may change this client at all (for showing the buttons)."""
    try:
        clients.require_may_manage(actor, client)
    except PrivilegeError:
        return False
    return True


def rotate_client_secret(client: Client, *, actor: Actor | None = None) -> str:
    """Give a confidential client a new secret (the old one and its tokens stop working);
    returns it once."""
    acting = who(actor)
    try:
        secret = clients.rotate_secret(client, actor=acting)
    except ClientError as exc:
        raise AdminError(str(exc)) from None
    audit(
        "admin.client.secret_rotated", acting, subject=client.client_id, client_id=client.client_id
    )
    return secret


def set_client_active(client: Client, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a client; disabling revokes every grant (token family) it holds and
    every access token issued to it so far (`tokens_not_before`)."""
    acting = who(actor)
    clients.require_may_manage(acting, client)
    client.is_active = bool(active)
    if not active:
        client.tokens_not_before = precise_utcnow()
        revoke_all_grants(client=client)
    audit(
        "admin.client.enabled" if active else "admin.client.disabled",
        acting,
        subject=client.client_id,
        client_id=client.client_id,
    )
    invalidate_on_commit(client.client_id)


def delete_client(client: Client, *, actor: Actor | None = None) -> None:
    """Delete a client after revoking its tokens; codes, grants and consents go with it."""
    acting = who(actor)
    clients.require_may_manage(acting, client)
    revoke_all_grants(client=client)
    audit(
        "admin.client.deleted",
        acting,
        subject=client.client_id,
        client_id=client.client_id,
        details={"name": client.name},
    )
    invalidate_on_commit(client.client_id)
    db.session.delete(client)
