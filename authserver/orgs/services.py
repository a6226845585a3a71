"""Organizations: create them, manage members and e-mailed invitations, answer who belongs.

A person belongs to any number of organizations with one role in each (a `Role`:
`admin`, `developer`, `viewer` or custom). Members holding `admin` there manage the
organization's members and invitations; server admins (permission `orgs:write`) manage
every organization and create new ones. Invitation links carry
`secrets.token_urlsafe(32)`; only its SHA-256 is stored, it expires after seven days
and is accepted once (an atomic UPDATE ... WHERE accepted_at IS NULL).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from ..accounts.models import Role, User
from ..accounts.services import is_valid_email, normalize_email
from ..extensions import db, utcnow
from ..roles import ceiling
from ..roles.ceiling import Actor, Power
from ..roles.permissions import allows
from .models import Invitation, Membership, Organization

ORG_ADMIN = ceiling.ORG_ADMIN_ROLE
ORG_SCOPE_PREFIX = ceiling.ORG_SCOPE_PREFIX
INVITATION_TTL = timedelta(days=7)
UNVERIFIED_INVITEE = "confirm your e-mail address first, then open the invitation again"
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
MAX_NAME_LENGTH = 200
# Paths under /orgs/ that are pages, not organizations.
RESERVED_SLUGS = frozenset({"new", "invitations"})
# token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_TOKEN_LENGTH = 128


class OrgError(ValueError):
    """An organization change was refused; the message says why, in words fit for a page."""


# Who may do what


def can_create_organizations(user: User | None) -> bool:
    """Server admins: the global `admin` role or the `orgs:write` permission."""
    return allows(ceiling.power_of_person(user), ceiling.ORGS_WRITE)


def can_manage(user: User | None, organization: Organization) -> bool:
    """Server admins, and the organization's own admins."""
    return user is not None and bool(org_power(Actor.person(user), organization))


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


# Organizations


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
                organization_id=organization.id, user_id=owner.id, role_id=_role(ORG_ADMIN).id
            )
        )
    _audit("org.created", actor, slug, {"name": cleaned})
    db.session.commit()
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


# Members


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
    role = _role(role_name)
    found = membership(organization, user)
    if found is not None:
        return change_member_role(found, role.name, actor=actor)
    found = Membership(organization_id=organization.id, user_id=user.id, role_id=role.id)
    db.session.add(found)
    _audit("org.member.added", actor, organization.slug, {"user": user.sub, "role": role.name})
    db.session.commit()
    return found


def change_member_role(
    found: Membership, role_name: str, *, actor: Actor | None = None
) -> Membership:
    """Give a member another role; the last admin of an organization stays admin."""
    actor = require_manager(actor, found.organization)
    role = _role(role_name)
    if found.role.name == ORG_ADMIN and role.name != ORG_ADMIN:
        _keep_an_admin(found)
    before = found.role.name
    found.role_id = role.id
    found.role = role
    _audit(
        "org.member.role_changed",
        actor,
        found.organization.slug,
        {"user": found.user.sub, "before": before, "after": role.name},
    )
    db.session.commit()
    return found


def remove_member(found: Membership, *, actor: Actor | None = None) -> None:
    """End a membership; the last admin of an organization cannot be removed."""
    actor = require_manager(actor, found.organization)
    if found.role.name == ORG_ADMIN:
        _keep_an_admin(found)
    _audit("org.member.removed", actor, found.organization.slug, {"user": found.user.sub})
    db.session.delete(found)
    db.session.commit()


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


def _role(name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.name == (name or "").strip()))
    if role is None:
        raise OrgError(f"no such role: {name!r}")
    return role


# Invitations


def hash_token(token: str) -> str:
    """The stored form of an invitation token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def invite(
    organization: Organization,
    email: str,
    role_name: str,
    *,
    invited_by: User | None = None,
    actor: Any = None,
) -> Invitation:
    """E-mail an invitation link; an earlier pending invitation of the address is revoked."""
    actor = require_manager(actor, organization)
    from ..accounts.registration import absolute_url, describe_duration
    from ..mail import send_mail

    address = normalize_email(email)
    if not is_valid_email(address):
        raise OrgError("enter a valid e-mail address")
    role = _role(role_name)
    now = utcnow()
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.organization_id == organization.id,
            Invitation.email == address,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        organization_id=organization.id,
        email=address,
        role_id=role.id,
        token_hash=hash_token(token),
        invited_by=invited_by.id if invited_by is not None else None,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    db.session.add(invitation)
    _audit("org.invitation.sent", actor, organization.slug, {"email": address, "role": role.name})
    # Queued in the outbox before the commit, so the invitation and its mail are stored together.
    send_mail(
        "org_invitation",
        address,
        account=invited_by.sub if invited_by is not None else None,
        organization_name=organization.name,
        role=role.name,
        inviter=(invited_by.name or invited_by.email) if invited_by is not None else "",
        link=absolute_url("orgs.invitation", token=token),
        valid_for=describe_duration(int(INVITATION_TTL.total_seconds())),
    )
    db.session.commit()
    return invitation


def pending_invitations(organization: Organization) -> list[Invitation]:
    """Invitations of the organization not yet accepted, revoked or expired, newest first."""
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.organization_id == organization.id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        )
    )


def get_invitation(organization: Organization, invitation_id: int) -> Invitation | None:
    """One invitation of this organization, by its id."""
    found = db.session.get(Invitation, invitation_id)
    return found if found is not None and found.organization_id == organization.id else None


def find_invitation(token: str | None) -> Invitation | None:
    """The live invitation behind a link: not accepted, revoked or expired."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(
        select(Invitation).where(
            Invitation.token_hash == hash_token(token),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > utcnow(),
        )
    )


def invitation_role(invitation: Invitation) -> Role:
    """The role the invitation offers."""
    role = db.session.get(Role, invitation.role_id)
    assert role is not None
    return role


def invitation_organization(invitation: Invitation) -> Organization:
    """The organization the invitation is for."""
    organization = db.session.get(Organization, invitation.organization_id)
    assert organization is not None
    return organization


def accept_invitation(token: str, user: User) -> Membership:
    """Join the organization as the invited person; the link works once.

    Only the person whose e-mail address was invited may accept, and only once that
    address is verified: the link alone could have been forwarded, and anyone can sign
    up with any address (an unverified account proves nothing about the mailbox).
    """
    invitation = find_invitation(token)
    if invitation is None:
        raise OrgError("this invitation is not valid any more")
    if normalize_email(user.email) != invitation.email:
        raise OrgError("this invitation is for another e-mail address")
    if not user.email_verified:
        raise OrgError(UNVERIFIED_INVITEE)
    accepted = db.session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=utcnow())
    )
    if accepted.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise OrgError("this invitation is not valid any more")
    organization = invitation_organization(invitation)
    role = invitation_role(invitation)
    found = membership(organization, user)
    if found is None:
        found = Membership(organization_id=organization.id, user_id=user.id, role_id=role.id)
        db.session.add(found)
    else:
        found.role_id = role.id
    _audit("org.invitation.accepted", None, organization.slug, {"role": role.name})
    db.session.commit()
    return found


def revoke_invitations_to(address: str) -> int:
    """Void every pending invitation to `address` (not committed); how many there were.

    Called by accounts when a password change or reset ends what an unverified holder
    of the address may have set in motion (accounts.registration.cancel_account_links).
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


def revoke_invitation(invitation: Invitation, *, actor: Actor | None = None) -> None:
    """Make a pending invitation's link stop working."""
    actor = require_manager(actor, invitation_organization(invitation))
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    organization = invitation_organization(invitation)
    _audit("org.invitation.revoked", actor, organization.slug, {"email": invitation.email})
    db.session.commit()


# What tokens carry


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


def _audit(event: str, actor: Actor | None, subject: str, details: dict[str, Any]) -> None:
    """Add the audit event to the session (the caller commits)."""
    from ..audit import record

    who = actor or ceiling.current_actor()
    record(event, actor=who.id, actor_type=who.type, subject=subject, details=details)
