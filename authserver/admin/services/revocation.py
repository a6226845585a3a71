"""Bulk revocation: everything a person or a client was given stops working at once.

This is the admin's one call site for revoking all of a person's or a client's grants
(disabling or signing out a person; disabling or deleting a client).
"""

from __future__ import annotations

from ...accounts.lifecycle import end_all_sessions_and_tokens
from ...accounts.models import User
from ...clients.models import Client
from ...oauth.services import revoke_all_grants as revoke_grants_of


def revoke_all_grants(*, user: User | None = None, client: Client | None = None) -> None:
    """Revoke every live grant (token family) of the person or of the client, with its
    refresh and access tokens; a person's sign-in sessions end with them. The caller commits.
    """
    if user is not None:
        # accounts ends the sessions; oauth revokes the grants when told (its signal).
        end_all_sessions_and_tokens(user)
    if client is not None:
        revoke_grants_of(client_id=client.client_id)
