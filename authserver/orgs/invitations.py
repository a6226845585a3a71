"""Invitations to an organization: e-mailed links that make the invited person a member.

Invitation links carry `new_token()`; only its SHA-256 is stored, it
expires after seven days and is accepted once (an atomic UPDATE ... WHERE accepted_at
IS NULL), and only by the invited address once it is verified.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from ..accounts.models import Role, User
from ..accounts.services import is_valid_email, normalize_email
from ..audit.actor import Actor
from ..core.secrets import hash_secret, new_token
from ..extensions import db, utcnow
from ..mail import send_mail
from ..mail.links import absolute_url, describe_duration
from .membership import membership
from .models import Invitation, Membership, Organization
from .services import OrgError, org_role, record_change, require_manager

INVITATION_TTL = timedelta(days=7)
UNVERIFIED_INVITEE = "confirm your e-mail address first, then open the invitation again"
# token_urlsafe(32) is 43 characters; anything much longer is not ours.
MAX_TOKEN_LENGTH = 128


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
    address = normalize_email(email)
    if not is_valid_email(address):
        raise OrgError("enter a valid e-mail address")
    role = org_role(role_name)
    now = utcnow()
    _revoke_pending(organization, address, now)
    token = new_token()
    invitation = Invitation(
        organization_id=organization.id,
        email=address,
        role_id=role.id,
        token_hash=hash_secret(token),
        invited_by=invited_by.id if invited_by is not None else None,
        created_at=now,
        expires_at=now + INVITATION_TTL,
    )
    db.session.add(invitation)
    record_change(
        "org.invitation.sent", actor, organization.slug, {"email": address, "role": role.name}
    )
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
    return invitation


def _revoke_pending(organization: Organization, address: str, now: datetime) -> None:
    """Void the organization's pending invitations to `address` (a new one replaces them)."""
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
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return db.session.scalar(
        select(Invitation).where(
            Invitation.token_hash == hash_secret(token),
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
        # Another request accepted it first; nothing was written here.
        raise OrgError("this invitation is not valid any more")
    organization = invitation_organization(invitation)
    role = invitation_role(invitation)
    found = membership(organization, user)
    if found is None:
        found = Membership(organization_id=organization.id, user_id=user.id, role_id=role.id)
        db.session.add(found)
    else:
        found.role_id = role.id
    record_change("org.invitation.accepted", None, organization.slug, {"role": role.name})
    db.session.flush()  # a row, so the caller can read its organization and role
    return found


def revoke_invitation(invitation: Invitation, *, actor: Actor | None = None) -> None:
    """Make a pending invitation's link stop working."""
    actor = require_manager(actor, invitation_organization(invitation))
    if invitation.accepted_at is None and invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
    organization = invitation_organization(invitation)
    record_change("org.invitation.revoked", actor, organization.slug, {"email": invitation.email})
