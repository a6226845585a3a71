"""Members of an organization: who belongs, with which role; add, change and remove them.

The organization's own admins (and server admins) manage its members; the last admin
of an organization stays admin, so someone can always manage it.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ..accounts.models import Role, User
from ..audit.actor import Actor
from ..extensions import db
from .models import Membership, Organization
from .services import ORG_ADMIN, OrgError, org_role, record_change, require_manager


def membership(organization: Organization, user: User) -> Membership | None:
    """The person's membership of the organization."""
    return db.session.scalar(
        select(Membership).where(
            Membership.organization_id == organization.id, Membership.user_id == user.id
        )
    )


def memberships_of(user: User) -> list[Membership]:
    """The person's memberships, by organization name."""
    return list(
        db.session.scalars(
            select(Membership)
            .join(Organization, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user.id)
            .order_by(Organization.name)
        )
    )


def members(organization: Organization) -> list[Membership]:
    """The organization's members, by e-mail."""
    return list(
        db.session.scalars(
            select(Membership)
            .join(User, Membership.user_id == User.id)
            .where(Membership.organization_id == organization.id)
            .order_by(User.email)
        )
    )


def get_membership(organization: Organization, membership_id: int) -> Membership | None:
    """One membership of this organization, by its id."""
    found = db.session.get(Membership, membership_id)
    return found if found is not None and found.organization_id == organization.id else None


def add_member(
    organization: Organization, user: User, role_name: str, *, actor: Actor | None = None
) -> Membership:
    """Make the person a member with this role (or change the role they hold)."""
    actor = require_manager(actor, organization)
    role = org_role(role_name)
    found = membership(organization, user)
    if found is not None:
        return change_member_role(found, role.name, actor=actor)
    found = Membership(organization_id=organization.id, user_id=user.id, role_id=role.id)
    db.session.add(found)
    record_change(
        "org.member.added", actor, organization.slug, {"user": user.sub, "role": role.name}
    )
    db.session.flush()  # a row, so the caller can read its organization, person and role
    return found


def change_member_role(
    found: Membership, role_name: str, *, actor: Actor | None = None
) -> Membership:
    """Give a member another role; the last admin of an organization stays admin."""
    actor = require_manager(actor, found.organization)
    role = org_role(role_name)
    if found.role.name == ORG_ADMIN and role.name != ORG_ADMIN:
        _keep_an_admin(found)
    before = found.role.name
    found.role_id = role.id
    found.role = role
    record_change(
        "org.member.role_changed",
        actor,
        found.organization.slug,
        {"user": found.user.sub, "before": before, "after": role.name},
    )
    return found


def remove_member(found: Membership, *, actor: Actor | None = None) -> None:
    """End a membership; the last admin of an organization cannot be removed."""
    actor = require_manager(actor, found.organization)
    if found.role.name == ORG_ADMIN:
        _keep_an_admin(found)
    record_change("org.member.removed", actor, found.organization.slug, {"user": found.user.sub})
    db.session.delete(found)


def _keep_an_admin(found: Membership) -> None:
    """Refuse to leave an organization without an admin: nobody there could manage it."""
    others = db.session.scalar(
        select(func.count(Membership.id))
        .join(Role, Membership.role_id == Role.id)
        .where(
            Membership.organization_id == found.organization_id,
            Membership.id != found.id,
            Role.name == ORG_ADMIN,
        )
    )
    if not others:
        raise OrgError("this is the organization's last admin; make another member admin first")
