"""Admin actions on people: find them, create them, change their name, roles and status,
verify their address, send a reset link, sign them out everywhere."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, or_, select

from ...accounts.models import Role, User
from ...accounts.password_reset import request_password_reset
from ...accounts.services import AccountError, create_user, get_user_by_sub
from ...audit.actor import Actor
from ...extensions import db
from ...roles import ceiling
from ...roles.services import RoleError, find_roles, list_roles
from .base import AdminError, audit, who
from .revocation import revoke_all_grants

MAX_PAGE_SIZE = 200
ADMIN_ROLE = "admin"


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
    acting = who(actor)
    held = _existing_roles(roles)
    ceiling.require_may_change_roles(acting, [], held)
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
    audit(
        "admin.user.created",
        acting,
        subject=user.sub,
        details={"email": user.email, "roles": user.role_names},
    )
    if send_reset:
        send_password_reset(user, actor=acting)
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
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    wanted = None if roles is None else _existing_roles(roles)
    if wanted is not None:
        ceiling.require_may_change_roles(acting, user.roles, wanted)
    if name is not None:
        set_user_name(user, name, actor=acting)
    if wanted is not None:
        set_user_roles(user, [role.name for role in wanted], actor=acting)
    if active is not None:
        set_user_active(user, active, actor=acting)
    if email_verified:
        mark_email_verified(user, actor=acting)


def set_user_active(user: User, active: bool, *, actor: Actor | None = None) -> None:
    """Enable or disable a person; disabling ends their sessions and revokes their tokens."""
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    if not active:
        _keep_an_admin(user, losing_admin=True)
    user.is_active = bool(active)
    if not active:
        revoke_all_grants(user=user)
    audit("admin.user.enabled" if active else "admin.user.disabled", acting, subject=user.sub)


def set_user_name(user: User, name: str, *, actor: Actor | None = None) -> None:
    """Change the person's display name (at most 200 characters)."""
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    name = (name or "").strip()
    if len(name) > 200:
        raise AdminError("the name can have at most 200 characters")
    before = user.name
    user.name = name
    audit("admin.user.renamed", acting, subject=user.sub, details={"before": before, "after": name})


def mark_email_verified(user: User, *, actor: Actor | None = None) -> None:
    """Record that the person's current e-mail address is theirs (checked out of band)."""
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    user.email_verified = True
    audit("admin.user.email_verified", acting, subject=user.sub, details={"email": user.email})


def send_password_reset(user: User, *, actor: Actor | None = None) -> None:
    """E-mail the person a single-use password reset link (the usual reset flow)."""
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    request_password_reset(user.email)
    audit("admin.user.reset_sent", acting, subject=user.sub)


def set_user_roles(user: User, role_names: Iterable[str], *, actor: Actor | None = None) -> None:
    """Make the person hold exactly these existing roles; those given and those taken away
    must lie within the actor's power."""
    acting = who(actor)
    roles = _existing_roles(role_names)
    ceiling.require_may_act_on_person(acting, user)
    ceiling.require_may_change_roles(acting, user.roles, roles)
    if ADMIN_ROLE not in {role.name for role in roles}:
        _keep_an_admin(user, losing_admin=True)
    before = user.role_names
    user.roles = roles
    audit(
        "admin.user.roles_changed",
        acting,
        subject=user.sub,
        details={"before": before, "after": user.role_names},
    )


def sign_out_everywhere(user: User, *, actor: Actor | None = None) -> None:
    """End every session of the person and revoke every token they hold."""
    acting = who(actor)
    ceiling.require_may_act_on_person(acting, user)
    revoke_all_grants(user=user)
    audit("admin.user.signed_out", acting, subject=user.sub)


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


def _escape_like(text: str) -> str:
    """Make `%`, `_` and `\\` match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
