"""What sessions tells the layers above it, without importing them (blinker signals).

`sessions` sits below `oidc`: it cannot tell the relying parties a session ended. It says
which sessions ended; oidc subscribes in its `init_app` and queues the back-channel logout
tokens in the same transaction (OpenID Connect Back-Channel Logout 1.0 section 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from blinker import Namespace

_signals = Namespace()


@dataclass(frozen=True)
class EndedSession:
    """One browser sign-in session that was just revoked."""

    session_id: str  # LoginSession.id: never published
    sid: str  # its public `sid` (sessions.services.sid_of)
    user_id: int


# Sessions were revoked (signed out here or by the relying party, a new password, a
# session ended from the account page or by an administrator, a disabled account). Sent
# with a list of EndedSession as `ended`, before the caller commits.
sessions_ended = _signals.signal("sessions-ended")
