"""Admin actions on people, clients and keys, shared by the console and the JSON admin API.

Every change records an audit event "admin.<thing>.<verb>" naming who acted and on
what, and commits. Callers check permissions first (`can_person` / the API's scopes);
these functions only enforce the rules of the data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context
from sqlalchemy import func, or_, select

from ..accounts.models import Role, User
from ..clients.models import Client
from ..extensions import db
from .permissions import ALL, allows

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 200
ADMIN_ROLE = "admin"


class AdminError(ValueError):
    """An admin action was refused; the message says why, in words fit for the console."""


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action: a person (sub), a service client (client_id), or the system."""

    type: str
    id: str | None

    @classmethod
    def person(cls, user: User) -> Actor:
        """A signed-in person acting through the console or with a user access token."""
        return cls("user", user.sub)

    @classmethod
    def client(cls, client_id: str) -> Actor:
        """A service client acting with its own access token (client_credentials)."""
        return cls("client", client_id)


SYSTEM = Actor("system", None)


# Who may do what


def person_permissions(user: User | None) -> set[str]:
    """Every permission granted by the roles an active person holds."""
    if user is None or not user.is_active:
        return set()
    return {permission for role in user.roles for permission in (role.permissions or [])}


def can_person(user: User | None, permission: str) -> bool:
    """True when one of the person's roles allows `permission` (admin/permissions.allows)."""
    return allows(person_permissions(user), permission)


def is_staff(user: User | None) -> bool:
    """True when the person holds any admin permission at all (may open the console)."""
    granted = person_permissions(user)
    return ALL in granted or any(":" in permission for permission in granted)


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
    actor: Actor | None = None,
) -> User:
    """Create a person with existing roles; optionally e-mail them a link to set a password."""
    from ..accounts.services import AccountError, create_user

    role_names = [role.name for role in _existing_roles(roles)]
    try:
        user = create_user(email, password=password, name=name or "", roles=role_names)
    except AccountError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.user.created",
        actor,
        subject=user.sub,
        details={"email": user.email, "roles": user.role_names},
    )
    db.session.commit()
    if send_reset:
        send_password_reset(user, actor=actor)
    return user


def set_user_active(user: User, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a person; disabling ends their sessions and revokes their tokens."""
    from ..accounts.registration import end_all_sessions_and_tokens

    if not active:
        _keep_an_admin(user, losing_admin=True)
    user.is_active = bool(active)
    if not active:
        end_all_sessions_and_tokens(user)
    _audit("admin.user.enabled" if active else "admin.user.disabled", actor, subject=user.sub)
    db.session.commit()


def set_user_name(user: User, name: str, *, actor: Actor | None = None) -> None:
    """Change the person's display name (at most 200 characters)."""
    name = (name or "").strip()
    if len(name) > 200:
        raise AdminError("the name can have at most 200 characters")
    before = user.name
    user.name = name
    _audit("admin.user.renamed", actor, subject=user.sub, details={"before": before, "after": name})
    db.session.commit()


def mark_email_verified(user: User, *, actor: Actor | None = None) -> None:
    """Record that the person's current e-mail address is theirs (checked out of band)."""
    user.email_verified = True
    _audit("admin.user.email_verified", actor, subject=user.sub, details={"email": user.email})
    db.session.commit()


def send_password_reset(user: User, *, actor: Actor | None = None) -> None:
    """E-mail the person a single-use password reset link (the usual reset flow)."""
    from ..accounts.registration import request_password_reset

    request_password_reset(user.email)
    _audit("admin.user.reset_sent", actor, subject=user.sub)
    db.session.commit()


def set_user_roles(user: User, role_names: Iterable[str], *, actor: Actor | None = None) -> None:
    """Make the person hold exactly these existing roles."""
    roles = _existing_roles(role_names)
    if ADMIN_ROLE not in {role.name for role in roles}:
        _keep_an_admin(user, losing_admin=True)
    before = user.role_names
    user.roles = roles
    _audit(
        "admin.user.roles_changed",
        actor,
        subject=user.sub,
        details={"before": before, "after": user.role_names},
    )
    db.session.commit()


def sign_out_everywhere(user: User, *, actor: Actor | None = None) -> None:
    """End every session of the person and revoke every token they hold."""
    from ..accounts.registration import end_all_sessions_and_tokens

    end_all_sessions_and_tokens(user)
    _audit("admin.user.signed_out", actor, subject=user.sub)
    db.session.commit()


def _existing_roles(names: Iterable[str]) -> list[Role]:
    """The roles with these names; AdminError naming any that does not exist."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name and name.strip()))
    if not wanted:
        return []
    found = {r.name: r for r in db.session.scalars(select(Role).where(Role.name.in_(wanted)))}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise AdminError(f"no such role: {', '.join(missing)}")
    return [found[name] for name in wanted]


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
    from ..clients.services import ClientError, create_client

    try:
        client, secret = create_client(**metadata)
    except ClientError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.client.created",
        actor,
        subject=client.client_id,
        client_id=client.client_id,
        details={"name": client.name, "grant_types": list(client.grant_types)},
    )
    db.session.commit()
    return client, secret


def update_client(
    client: Client,
    *,
    name: str | None = None,
    redirect_uris: Iterable[str] | None = None,
    post_logout_redirect_uris: Iterable[str] | None = None,
    grant_types: Iterable[str] | None = None,
    scope: str | None = None,
    skip_consent: bool | None = None,
    web_origins: Iterable[str] | None = None,
    resources: Iterable[str] | None = None,
    actor: Actor | None = None,
) -> Client:
    """Change the given metadata (None = keep), checked by the same rules as registration."""
    from ..clients import services as clients

    try:
        changes = _client_changes(
            client,
            name=name,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            grant_types=grant_types,
            scope=scope,
            web_origins=web_origins,
            resources=resources,
        )
    except clients.ClientError as exc:
        raise AdminError(str(exc)) from None
    if skip_consent is not None:
        changes["skip_consent"] = bool(skip_consent)
    changed = {key: value for key, value in changes.items() if getattr(client, key) != value}
    for key, value in changed.items():
        setattr(client, key, value)
    _audit(
        "admin.client.updated",
        actor,
        subject=client.client_id,
        client_id=client.client_id,
        details={"changed": sorted(changed)},
    )
    db.session.commit()
    _client_changed(client.client_id)
    return client


def _client_changes(
    client: Client,
    *,
    name: str | None,
    redirect_uris: Iterable[str] | None,
    post_logout_redirect_uris: Iterable[str] | None,
    grant_types: Iterable[str] | None,
    scope: str | None,
    web_origins: Iterable[str] | None,
    resources: Iterable[str] | None,
) -> dict[str, Any]:
    """The validated new values (clients.services rules); raises ClientError."""
    from ..clients import services as clients

    grants = clients._check_grant_types(
        grant_types if grant_types is not None else client.grant_types
    )
    clients._check_auth_method(client.token_endpoint_auth_method, grants)
    redirects = clients._check_redirect_uris(
        redirect_uris if redirect_uris is not None else client.redirect_uris, "redirect_uri"
    )
    if "authorization_code" in grants and not redirects:
        raise clients.ClientError("the authorization_code grant needs at least one redirect URI")
    changes: dict[str, Any] = {
        "grant_types": grants,
        "response_types": ["code"] if "authorization_code" in grants else [],
        "redirect_uris": redirects,
    }
    if name is not None:
        changes["name"] = clients._check_name(name)
    if post_logout_redirect_uris is not None:
        changes["post_logout_redirect_uris"] = clients._check_redirect_uris(
            post_logout_redirect_uris, "post_logout_redirect_uri"
        )
    if scope is not None:
        changes["scope"] = clients._check_scope(scope)
    if web_origins is not None:
        changes["web_origins"] = clients._check_web_origins(web_origins)
    if resources is not None:
        changes["resources"] = clients._check_resources(resources)
    return changes


def rotate_client_secret(client: Client, *, actor: Actor | None = None) -> str:
    """Give a confidential client a new secret (the old one stops working); returns it once."""
    from ..clients.services import ClientError, rotate_secret

    try:
        secret = rotate_secret(client)
    except ClientError as exc:
        raise AdminError(str(exc)) from None
    _audit(
        "admin.client.secret_rotated", actor, subject=client.client_id, client_id=client.client_id
    )
    db.session.commit()
    return secret


def set_client_active(client: Client, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a client; disabling also revokes every grant (token family) it holds."""
    client.is_active = bool(active)
    if not active:
        _revoke_client_grants(client)
    _audit(
        "admin.client.enabled" if active else "admin.client.disabled",
        actor,
        subject=client.client_id,
        client_id=client.client_id,
    )
    db.session.commit()
    _client_changed(client.client_id)


def delete_client(client: Client, *, actor: Actor | None = None) -> None:
    """Delete a client after revoking its tokens; codes, grants and consents go with it."""
    client_id = client.client_id
    _revoke_client_grants(client)
    _audit(
        "admin.client.deleted",
        actor,
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
    _audit("admin.keys.rotated", actor, subject=",".join(kids), details={"alg": alg, "kids": kids})
    db.session.commit()
    return kids


# Audit


def _audit(
    event: str,
    actor: Actor | None,
    *,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the audit event of an admin action to the session (the caller commits)."""
    from ..audit import record

    who = actor or _request_actor()
    record(
        event,
        actor=who.id,
        actor_type=who.type,
        subject=subject,
        client_id=client_id,
        details=details or {},
    )


def _request_actor() -> Actor:
    """The actor of this request: what the API set on g.admin_actor, else the signed-in person."""
    if not has_request_context():
        return SYSTEM
    actor = g.get("admin_actor")
    if isinstance(actor, Actor):
        return actor
    from ..sessions.services import current_user

    user = current_user()
    return Actor.person(user) if user is not None else SYSTEM


def _escape_like(text: str) -> str:
    """Make `%`, `_` and `\\` match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
