"""The back-channel logout outbox: one row per logout token owed to one client."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, precise_utcnow, utcnow

# pending -> sent | failed (core.outbox's states).
PENDING = "pending"
SENT = "sent"
FAILED = "failed"


class BackchannelLogout(db.Model):  # type: ignore[name-defined]
    """OpenID Connect Back-Channel Logout 1.0 section 2.5: a logout token to deliver.

    Written in the transaction that ended the session (sessions.signals), so a sign-out
    that commits owes its notices for good, and one that rolls back owes none. The token
    itself is signed at each attempt (a key may rotate meanwhile); `jti` stays the same,
    so a relying party sees a retry as the same token.
    """

    __tablename__ = "backchannel_logouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    # Section 2.4: the subject as this client knows it (oidc.subjects) and the session.
    sub: Mapped[str] = mapped_column(String(255))
    sid: Mapped[str | None] = mapped_column(String(64))
    jti: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    # Why the last attempt failed, in a few words (never a token).
    reason: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=precise_utcnow, index=True
    )
    # A sender holds the row until then; a crashed sender's claim simply runs out.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
