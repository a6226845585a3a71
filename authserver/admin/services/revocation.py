"""Bulk revocation: everything a person or a client was given stops working at once.

This is the admin's one call site for revoking all of a person's or a client's grants
(disabling or signing out a person; disabling or deleting a client).
"""

from __future__ import annotations

from sqlalchemy import select

from ...accounts.models import User
from ...accounts.registration import end_all_sessions_and_tokens
from ...clients.models import Client
from ...extensions import db
from ...oauth.models import Grant
from ...oauth.services import revoke_grant


def revoke_all_grants(*, user: User | None = None, client: Client | None = None) -> None:
    """Revoke every live grant (token family) of the person or of the client, with its
    refresh and access tokens; a person's sign-in sessions end with them. The caller commits.
    """
    if user is not None:
        # accounts ends the sessions and revokes the grants of a person in one step.
        end_all_sessions_and_tokens(user)
    if client is not None:
        grant_ids = db.session.scalars(
            select(Grant.id).where(Grant.client_id == client.client_id, Grant.revoked_at.is_(None))
        ).all()
        for grant_id in grant_ids:
            revoke_grant(grant_id)
