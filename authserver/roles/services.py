"""Roles: named sets of permissions that people hold, built-in or custom.

The built-in roles `admin`, `developer` and `viewer` are seeded by migration 0005 with the
permissions of `permissions.BUILTIN_PERMISSIONS`; they cannot be deleted and their
permissions do not change. Custom roles take permissions of the catalogue, and only those
the actor holds (`ceiling`). Every change records an audit event "admin.role.<verb>"; the
request or CLI command that called it commits (core.uow). Callers check that the actor may
manage roles (`roles:write`) first. Without an `actor`, the actor of the request acts
(`ceiling.current_actor`), or the system outside one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select

from ..accounts.models import BUILTIN_ROLES, Role, User
from ..audit import record
from ..audit.actor import Actor
from ..extensions import db
from ..orgs.models import Membership
from . import ceiling
from .permissions import ALL, PERMISSIONS

# Role names travel in tokens (`roles`, `org_roles`): short, lower-case, no spaces.
ROLE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MAX_DESCRIPTION_LENGTH = 255
ADMIN_ROLE = "admin"


class RoleError(ValueError):
    """A role change was refused; the message says why, in words fit for a page."""


def list_roles() -> list[Role]:
    """Every role, built-in ones first, then by name."""
    return list(db.session.scalars(select(Role).order_by(Role.builtin.desc(), Role.name)))


def get_role(name: str) -> Role | None:
    """The role with this name."""
    return db.session.scalar(select(Role).where(Role.name == (name or "").strip()))


def find_roles(names: Iterable[str]) -> list[Role]:
    """The roles with these names, in the order given; RoleError naming any that does not exist."""
    wanted = list(dict.fromkeys(name.strip() for name in names if name and name.strip()))
    if not wanted:
        return []
    found = {r.name: r for r in db.session.scalars(select(Role).where(Role.name.in_(wanted)))}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise RoleError(f"no such role: {', '.join(missing)}")
    return [found[name] for name in wanted]


def create_role(
    name: str,
    *,
    description: str = "",
    permissions: Iterable[str] = (),
    actor: Actor | None = None,
) -> Role:
    """A new custom role with permissions from the catalogue that the actor holds."""
    who = actor or ceiling.current_actor()
    name = _check_name(name)
    if get_role(name) is not None:
        raise RoleError(f"a role named {name!r} already exists")
    wanted = _check_permissions(permissions, allow_all=False)
    ceiling.require_may_set_permissions(who, None, wanted)
    role = Role(
        name=name, description=_check_description(description), permissions=wanted, builtin=False
    )
    db.session.add(role)
    db.session.flush()  # its id and created_at, for the caller's answer
    _audit("admin.role.created", who, name, {"permissions": role.permissions})
    return role


def update_role(
    role: Role,
    *,
    description: str | None = None,
    permissions: Iterable[str] | None = None,
    actor: Actor | None = None,
) -> Role:
    """Change a role's description or (custom roles only) its permissions; None = keep.

    The actor must hold the role's permissions, old and new: a role is changed only by
    someone who could have made it.
    """
    who = actor or ceiling.current_actor()
    cleaned = None if description is None else _check_description(description)
    wanted = (
        None if permissions is None else _check_permissions(permissions, allow_all=role.builtin)
    )
    if role.builtin and wanted is not None and wanted != sorted(role.permissions or []):
        raise RoleError(f"the permissions of the built-in role {role.name!r} are fixed")
    ceiling.require_may_set_permissions(who, list(role.permissions or []), wanted)
    if cleaned is not None:
        role.description = cleaned
    if wanted is not None:
        role.permissions = wanted
    _audit("admin.role.updated", who, role.name, {"permissions": list(role.permissions)})
    return role


def delete_role(role: Role, *, actor: Actor | None = None) -> None:
    """Delete a custom role; people lose it. Refused for built-in roles and roles held in orgs,
    and to an actor not holding its permissions."""
    who = actor or ceiling.current_actor()
    if role.builtin or role.name in BUILTIN_ROLES:
        raise RoleError(f"the built-in role {role.name!r} cannot be deleted")
    ceiling.require_may_set_permissions(who, list(role.permissions or []), None)
    held = db.session.scalar(select(func.count(Membership.id)).where(Membership.role_id == role.id))
    if held:
        raise RoleError(f"the role {role.name!r} is held by {held} organization member(s)")
    _audit("admin.role.deleted", who, role.name, {})
    db.session.delete(role)


def assign_role(user: User, name: str, *, actor: Actor | None = None) -> None:
    """Give the person this existing role (nothing changes if they hold it).

    The actor must hold everything the person holds and everything the role grants.
    """
    who = actor or ceiling.current_actor()
    role = _existing(name)
    if role not in user.roles:
        ceiling.require_may_act_on_person(who, user)
        ceiling.require_may_change_roles(who, user.roles, [*user.roles, role])
        user.roles.append(role)
        _audit("admin.user.role_added", who, user.sub, {"role": role.name})


def remove_role(user: User, name: str, *, actor: Actor | None = None) -> None:
    """Take this role from the person; the last active admin keeps `admin`.

    The actor must hold everything the person holds (the role included).
    """
    who = actor or ceiling.current_actor()
    role = _existing(name)
    if role not in user.roles:
        return
    ceiling.require_may_act_on_person(who, user)
    ceiling.require_may_change_roles(who, user.roles, [r for r in user.roles if r != role])
    if role.name == ADMIN_ROLE and not _other_active_admins(user):
        raise RoleError("this is the last active admin; make someone else an admin first")
    user.roles.remove(role)
    _audit("admin.user.role_removed", who, user.sub, {"role": role.name})


def effective_permissions(user: User | None) -> list[str]:
    """The catalogue permissions the person's roles grant (`*` expanded), sorted."""
    if user is None or not user.is_active:
        return []
    granted = {permission for role in user.roles for permission in (role.permissions or [])}
    if ALL in granted:
        return sorted(PERMISSIONS)
    return sorted(granted & set(PERMISSIONS))


def _existing(name: str) -> Role:
    role = get_role(name)
    if role is None:
        raise RoleError(f"no such role: {name!r}")
    return role


def _other_active_admins(user: User) -> int:
    return int(
        db.session.scalar(
            select(func.count(User.id))
            .join(User.roles)
            .where(Role.name == ADMIN_ROLE, User.is_active.is_(True), User.id != user.id)
        )
        or 0
    )


def _check_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not ROLE_NAME.fullmatch(cleaned):
        raise RoleError(
            "a role name starts with a lower-case letter and has at most 64 lower-case "
            "letters, digits, '_', '.' or '-'"
        )
    return cleaned


def _check_description(description: str) -> str:
    cleaned = " ".join((description or "").split())
    if len(cleaned) > MAX_DESCRIPTION_LENGTH:
        raise RoleError(f"the description can have at most {MAX_DESCRIPTION_LENGTH} characters")
    return cleaned


def _check_permissions(permissions: Iterable[str], *, allow_all: bool) -> list[str]:
    """Only catalogue permissions; `*` (everything) is the built-in admin's alone."""
    wanted = sorted({p.strip() for p in permissions if p and p.strip()})
    unknown = [p for p in wanted if p not in PERMISSIONS and not (allow_all and p == ALL)]
    if unknown:
        raise RoleError(f"unknown permission: {', '.join(unknown)}")
    return wanted


def _audit(event: str, who: Actor, subject: str, details: dict[str, Any]) -> None:
    """Add the audit event to the session (the caller commits)."""
    record(event, actor=who.id, actor_type=who.type, subject=subject, details=details)


def role_holders(role: Role) -> list[str]:
    """The e-mail addresses of the people holding `role`, sorted."""
    query = select(User.email).join(User.roles).where(Role.id == role.id).order_by(User.email)
    return list(db.session.scalars(query))
