"""Organizations: create and find them, who may manage them, and what other packages ask
of them (the organizations a person belongs to, what tokens carry, voiding invitations).

A person belongs to any number of organizations with one role in each (a `Role`:
`admin`, `developer`, `viewer` or custom). Members holding `admin` there manage the
organization's members and invitations (orgs.membership, orgs.invitations); server
admins (permission `orgs:write`) manage every organization and create new ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from ..accounts.models import Role, User
from ..accounts.services import normalize_email
from ..audit import record
from ..audit.actor import Actor
from ..extensions import db, utcnow
from ..roles import ceiling
from ..roles.ceiling import Power, person_actor
from ..roles.permissions import allows
from .models import Invitation, Membership, Organization

ORG_ADMIN = ceiling.ORG_ADMIN_ROLE
ORG_SCOPE_PREFIX = ceiling.ORG_SCOPE_PREFIX
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
MAX_NAME_LENGTH = 200
# Paths under /orgs/ that are pages, not organizations.
RESERVED_SLUGS = frozenset({"new", "invitations"})


# Who may do what


class OrgError(ValueError):
    """An organization change was refused; the message says why, in words fit for a page."""


def can_create_organizations(user: User | None) -> bool:
    """Server admins: the global `admin` role or the `orgs:write` permission."""
    return allows(ceiling.power_of_person(user), ceiling.ORGS_WRITE)


def can_manage(user: User | None, organization: Organization) -> bool:
    """Server admins, and the organization's own admins."""
    return user is not None and bool(org_power(person_actor(user), organization))


def org_power(actor: Actor, organization: Organization) -> Power:
    """The organization roles the actor may hand out there (roles.ceiling.org_power)."""
    role = None
    if actor.type == "user" and actor.id and not allows(actor.power, ceiling.ORGS_WRITE):
        found = db.session.scalar(
            select(Membership)
            .join(User, Membership.user_id == User.id)
            .where(Membership.organization_id == organization.id, User.sub == actor.id)
        )
        role = found.role.name if found is not None else None
    return ceiling.org_power(actor.power, role)


def require_manager(actor: Actor | None, organization: Organization) -> Actor:
    """The actor (of the request when None), if it may manage the organization's members."""
    who = actor or ceiling.current_actor()
    ceiling.require_org_manager(org_power(who, organization))
    return who


def slugify(name: str) -> str:
    """A URL- and scope-safe identifier from a name: lower-case ASCII words joined by '-'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:48].strip("-") or "org"


def create_organization(
    name: str, *, slug: str | None = None, owner: User | None = None, actor: Actor | None = None
) -> Organization:
    """A new organization; `owner` becomes its first admin. The slug is derived when not given.

    Only holders of orgs:write create organizations.
    """
    actor = actor or ceiling.current_actor()
    ceiling.require_within(actor.power, [ceiling.ORGS_WRITE], "create organizations without")
    cleaned = " ".join((name or "").split())
    if not cleaned or len(cleaned) > MAX_NAME_LENGTH:
        raise OrgError(f"the name must have 1 to {MAX_NAME_LENGTH} characters")
    if slug:
        slug = slug.strip().lower()
        if not SLUG.fullmatch(slug):
            raise OrgError("the identifier has lower-case letters, digits and inner '-' only")
        if slug in RESERVED_SLUGS or get_organization(slug) is not None:
            raise OrgError(f"the identifier {slug!r} is taken")
    else:
        slug = _free_slug(slugify(cleaned))
    organization = Organization(slug=slug, name=cleaned)
    db.session.add(organization)
    db.session.flush()
    if owner is not None:
        db.session.add(
            Membership(
                organization_id=organization.id, user_id=owner.id, role_id=org_role(ORG_ADMIN).id
            )
        )
    record_change("org.created", actor, slug, {"name": cleaned})
    return organization


def _free_slug(base: str) -> str:
    """`base`, or `base-2`, `base-3`, ... whichever is not taken yet."""
    taken = set(RESERVED_SLUGS) | set(
        db.session.scalars(
            select(Organization.slug).where(
                (Organization.slug == base) | Organization.slug.like(base + "-%")
            )
        )
    )
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def get_organization(slug: str | None) -> Organization | None:
    """The organization with this slug."""
    if not slug or len(slug) > 64:
        return None
    return db.session.scalar(select(Organization).where(Organization.slug == slug))


def list_organizations() -> list[Organization]:
    """Every organization, by name."""
    return list(db.session.scalars(select(Organization).order_by(Organization.name)))


def org_role(name: str) -> Role:
    """The role with this name, for a membership or an invitation; OrgError if none."""
    role = db.session.scalar(select(Role).where(Role.name == (name or "").strip()))
    if role is None:
        raise OrgError(f"no such role: {name!r}")
    return role


def member_slugs(user: User) -> set[str]:
    """The slugs of every organization the person belongs to."""
    return set(
        db.session.scalars(
            select(Organization.slug)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user.id)
        )
    )


def fitting_organizations(user: User, slugs: Iterable[str] | None) -> list[Organization]:
    """The person's organizations among `slugs` (all of them when None), by name."""
    statement = (
        select(Organization)
        .join(Membership, Membership.organization_id == Organization.id)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name)
    )
    if slugs is not None:
        statement = statement.where(Organization.slug.in_(list(slugs)))
    return list(db.session.scalars(statement))


def organization_claims(organization_id: int | None, user: User) -> dict[str, Any] | None:
    """`org_id` (the slug) and `org_roles` for a grant's organization; None when not a member."""
    if organization_id is None:
        return {}
    found = db.session.scalar(
        select(Membership).where(
            Membership.organization_id == organization_id, Membership.user_id == user.id
        )
    )
    if found is None:
        return None
    return {"org_id": found.organization.slug, "org_roles": [found.role.name]}


def revoke_invitations_to(address: str) -> int:
    """Void every pending invitation to `address` (not committed); how many there were.

    Called by accounts when a password change or reset ends what an unverified holder
    of the address may have set in motion (accounts.lifecycle.cancel_account_links).
    """
    result = db.session.execute(
        update(Invitation)
        .where(
            Invitation.email == normalize_email(address),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def record_change(event: str, actor: Actor | None, subject: str, details: dict[str, Any]) -> None:
    """Add the audit event to the session (the caller commits)."""
    who = actor or ceiling.current_actor()
    record(event, actor=who.id, actor_type=who.type, subject=subject, details=details)
