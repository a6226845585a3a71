"""Admin actions on people, clients and keys, shared by the console, the JSON admin API and
the command line.

Every change records an audit event "admin.<thing>.<verb>" naming who acted and on
what, and commits. Callers check the permission of the route first (`can_person` / the
API's scopes); these functions enforce the rules of the data and the privilege ceiling
(`roles.ceiling`): an actor never gives more than it holds, nor acts on a person or a
client holding more than it. Without an `actor`, the actor of the request acts
(`roles.ceiling.current_actor`), or the system outside one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select

from ..accounts.models import Role, User
from ..clients import services as clients
from ..clients.models import Client
from ..extensions import db, precise_utcnow
from ..roles import ceiling
from ..roles.ceiling import SYSTEM, Actor, PrivilegeError
from ..roles.permissions import allows
from ..roles.services import RoleError, find_roles, list_roles

log = logging.getLogger(__name__)

__all__ = ["SYSTEM", "Actor", "AdminError", "PrivilegeError"]

MAX_PAGE_SIZE = 200
ADMIN_ROLE = "admin"


class AdminError(ValueError):
    """An admin action was refused; the message says why, in words fit for the console."""


# Who may do what


def person_permissions(user: User | None) -> set[str]:
    """Every permission granted by the roles an active person holds (roles.ceiling)."""
    return set(ceiling.power_of_person(user))


def can_person(user: User | None, permission: str) -> bool:
    """True when one of the person's roles allows `permission` (roles/permissions.allows)."""
    return allows(ceiling.power_of_person(user), permission)


def is_staff(user: User | None) -> bool:
    """True when the person holds any admin permission at all (may open the console)."""
    return ceiling.is_staff(ceiling.power_of_person(user))


def _who(actor: Actor | None) -> Actor:
    """The actor given, else the actor of the request (the system outside one)."""
    return actor or _request_actor()


def _request_actor() -> Actor:
    """The actor of this request: what a view set on g.admin_actor, else the signed-in
    person (roles.ceiling.current_actor, where the rule lives)."""
    return ceiling.current_actor()


# Users


def search_users(query: str = "", *, limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    """People whose e-mail or name contains `query` (any case), by e-mail; and the total count."""
    statement = select(User)
    text = (query or "").strip()
    if text:
        pattern = "%" + _escape_like(text.lower()) + "%"
        statement = statement.where(
            or_(
                User.email.like(pattern, escape="\\"),
                func.lower(User.name).like(pattern, escape="\\"),
            )
        )
    total = db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    limit = max(1, min(int(limit), MAX_PAGE_SIZE))
    page = db.session.scalars(
        statement.order_by(User.email).limit(limit).offset(max(0, int(offset)))
    )
    return list(page), int(total)


def get_user(sub: str) -> User | None:
    """The person with this subject identifier, active or not."""
    from ..accounts.services import get_user_by_sub

    return get_user_by_sub(sub)


def create_user_as_admin(
    email: str,
    name: str,
    password: str | None,
    roles: Iterable[str] = (),
    send_reset: bool = False,
    *,
    email_verified: bool = False,
    actor: Actor | None = None,
) -> User:
    """Create a person with existing roles the actor may give; optionally e-mail them a link
    to set a password."""
    from ..accounts.services import AccountError, create_user

    who = _who(actor)
    held = _existing_roles(roles)
    ceiling.require_may_change_roles(who, [], held)
    try:
        user = create_user(
            email,
            password=password,
            name=name or "",
            roles=[role.name for role in held],
            email_verified=email_verified,
        )
    except AccountError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.user.created",
        who,
        subject=user.sub,
        details={"email": user.email, "roles": user.role_names},
    )
    db.session.commit()
    if send_reset:
        send_password_reset(user, actor=who)
    return user


def update_user(
    user: User,
    *,
    name: str | None = None,
    roles: Iterable[str] | None = None,
    active: bool | None = None,
    email_verified: bool = False,
    actor: Actor | None = None,
) -> None:
    """Apply several changes to a person (None = keep), each checked before any is made."""
    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    wanted = None if roles is None else _existing_roles(roles)
    if wanted is not None:
        ceiling.require_may_change_roles(who, user.roles, wanted)
    if name is not None:
        set_user_name(user, name, actor=who)
    if wanted is not None:
        set_user_roles(user, [role.name for role in wanted], actor=who)
    if active is not None:
        set_user_active(user, active, actor=who)
    if email_verified:
        mark_email_verified(user, actor=who)


def set_user_active(user: User, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a person; disabling ends their sessions and revokes their tokens."""
    from ..accounts.registration import end_all_sessions_and_tokens

    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    if not active:
        _keep_an_admin(user, losing_admin=True)
    user.is_active = bool(active)
    if not active:
        end_all_sessions_and_tokens(user)
    _audit("admin.user.enabled" if active else "admin.user.disabled", who, subject=user.sub)
    db.session.commit()


def set_user_name(user: User, name: str, *, actor: Actor | None = None) -> None:
    """Change the person's display name (at most 200 characters)."""
    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    name = (name or "").strip()
    if len(name) > 200:
        raise AdminError("the name can have at most 200 characters")
    before = user.name
    user.name = name
    _audit("admin.user.renamed", who, subject=user.sub, details={"before": before, "after": name})
    db.session.commit()


def mark_email_verified(user: User, *, actor: Actor | None = None) -> None:
    """Record that the person's current e-mail address is theirs (checked out of band)."""
    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    user.email_verified = True
    _audit("admin.user.email_verified", who, subject=user.sub, details={"email": user.email})
    db.session.commit()


def send_password_reset(user: User, *, actor: Actor | None = None) -> None:
    """E-mail the person a single-use password reset link (the usual reset flow)."""
    from ..accounts.registration import request_password_reset

    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    request_password_reset(user.email)
    _audit("admin.user.reset_sent", who, subject=user.sub)
    db.session.commit()


def set_user_roles(user: User, role_names: Iterable[str], *, actor: Actor | None = None) -> None:
    """Make the person hold exactly these existing roles; those given and those taken away
    must lie within the actor's power."""
    who = _who(actor)
    roles = _existing_roles(role_names)
    ceiling.require_may_act_on_person(who, user)
    ceiling.require_may_change_roles(who, user.roles, roles)
    if ADMIN_ROLE not in {role.name for role in roles}:
        _keep_an_admin(user, losing_admin=True)
    before = user.role_names
    user.roles = roles
    _audit(
        "admin.user.roles_changed",
        who,
        subject=user.sub,
        details={"before": before, "after": user.role_names},
    )
    db.session.commit()


def sign_out_everywhere(user: User, *, actor: Actor | None = None) -> None:
    """End every session of the person and revoke every token they hold."""
    from ..accounts.registration import end_all_sessions_and_tokens

    who = _who(actor)
    ceiling.require_may_act_on_person(who, user)
    end_all_sessions_and_tokens(user)
    _audit("admin.user.signed_out", who, subject=user.sub)
    db.session.commit()


def may_act_on_person(actor: Actor, user: User) -> bool:
    """Whether the actor may change this person at all (for showing the buttons)."""
    return ceiling.within(actor.power, ceiling.power_of_roles(user.roles))


def grantable_roles(actor: Actor) -> list[Role]:
    """The roles the actor may give, by name (for the console's choices)."""
    return ceiling.grantable(actor.power, list_roles())


def _existing_roles(names: Iterable[str]) -> list[Role]:
    """The roles with these names; AdminError naming any that does not exist."""
    try:
        return find_roles(names)
    except RoleError as exc:
        raise AdminError(str(exc)) from None


def _keep_an_admin(user: User, *, losing_admin: bool) -> None:
    """Refuse to disable or demote the last active admin: nobody could undo it without SQL."""
    if not losing_admin or ADMIN_ROLE not in user.role_names or not user.is_active:
        return
    others = db.session.scalar(
        select(func.count(User.id))
        .join(User.roles)
        .where(Role.name == ADMIN_ROLE, User.is_active.is_(True), User.id != user.id)
    )
    if not others:
        raise AdminError("this is the last active admin; make someone else an admin first")


# Clients


def create_client_as_admin(
    *, actor: Actor | None = None, **metadata: Any
) -> tuple[Client, str | None]:
    """Register a client (clients.services.create_client); returns it and its secret, if any."""
    who = _who(actor)
    try:
        client, secret = clients.create_client(actor=who, **metadata)
    except clients.ClientError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.client.created",
        who,
        subject=client.client_id,
        client_id=client.client_id,
        details={
            "name": client.name,
            "grant_types": list(client.grant_types),
            "roles": client.role_names,
        },
    )
    db.session.commit()
    return client, secret


def update_client(client: Client, *, actor: Actor | None = None, **changes: Any) -> Client:
    """Change the given metadata (clients.services.update_client: None = keep), checked by the
    same rules as registration and the privilege ceiling."""
    who = _who(actor)
    try:
        changed = clients.update_client(client, actor=who, **changes)
    except clients.ClientError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.client.updated",
        who,
        subject=client.client_id,
        client_id=client.client_id,
        details={"changed": changed},
    )
    db.session.commit()
    _client_changed(client.client_id)
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
    who = _who(actor)
    try:
        secret = clients.rotate_secret(client, actor=who)
    except clients.ClientError as exc:
        raise AdminError(str(exc)) from None
    _audit("admin.client.secret_rotated", who, subject=client.client_id, client_id=client.client_id)
    db.session.commit()
    return secret


def set_client_active(client: Client, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a client; disabling revokes every grant (token family) it holds and
    every access token issued to it so far (`tokens_not_before`)."""
    who = _who(actor)
    clients.require_may_manage(who, client)
    client.is_active = bool(active)
    if not active:
        client.tokens_not_before = precise_utcnow()
        _revoke_client_grants(client)
    _audit(
        "admin.client.enabled" if active else "admin.client.disabled",
        who,
        subject=client.client_id,
        client_id=client.client_id,
    )
    db.session.commit()
    _client_changed(client.client_id)


def delete_client(client: Client, *, actor: Actor | None = None) -> None:
    """Delete a client after revoking its tokens; codes, grants and consents go with it."""
    who = _who(actor)
    clients.require_may_manage(who, client)
    client_id = client.client_id
    _revoke_client_grants(client)
    _audit(
        "admin.client.deleted",
        who,
        subject=client_id,
        client_id=client_id,
        details={"name": client.name},
    )
    db.session.delete(client)
    db.session.commit()
    _client_changed(client_id)


def _revoke_client_grants(client: Client) -> None:
    """Revoke every live grant of the client, with its refresh and access tokens."""
    from ..oauth.models import Grant
    from ..oauth.services import revoke_grant

    grant_ids = db.session.scalars(
        select(Grant.id).where(Grant.client_id == client.client_id, Grant.revoked_at.is_(None))
    ).all()
    for grant_id in grant_ids:
        revoke_grant(grant_id)


def _client_changed(client_id: str) -> None:
    """Drop the cached snapshot of the client so the change applies at once."""
    from ..clients.cache import invalidate_client_cache

    invalidate_client_cache(client_id)


# Signing keys


def list_signing_keys() -> list[Any]:
    """Every stored signing key, newest first, with its status (keys.services.KeyInfo)."""
    from ..keys import current_keyring

    return current_keyring().list_keys()


def rotate_signing_keys(alg: str | None = None, *, actor: Actor | None = None) -> list[str]:
    """Make new signing keys for `alg` (or every algorithm) and retire the old; returns new kids."""
    from ..keys import current_keyring

    try:
        rows = current_keyring().rotate(alg)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    kids = [row.kid for row in rows]
    details = {"alg": alg, "kids": kids}
    _audit("admin.keys.rotated", _who(actor), subject=",".join(kids), details=details)
    db.session.commit()
    return kids


# Audit


def _audit(
    event: str,
    who: Actor,
    *,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the audit event of an admin action to the session (the caller commits)."""
    from ..audit import record

    record(
        event,
        actor=who.id,
        actor_type=who.type,
        subject=subject,
        client_id=client_id,
        details=details or {},
    )


def _escape_like(text: str) -> str:
    """Make `%`, `_` and `\\` match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
