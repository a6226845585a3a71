"""The mail outbox: messages written in the transaction that caused them, delivered later."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, precise_utcnow, utcnow

# pending -> sent | failed; suppressed rows were never to be sent (kept so that every
# request about an address does the same work whether or not a mail goes out).
PENDING = "pending"
SENT = "sent"
FAILED = "failed"
SUPPRESSED = "suppressed"


class MailMessage(db.Model):  # type: ignore[name-defined]
    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(255), default="")
    # The whole RFC 5322 message; emptied once sent (it may hold a single-use link).
    message: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=PENDING, index=True)
    # Why it was suppressed or failed, in a word or two (never a secret).
    reason: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=precise_utcnow, index=True
    )
    # A sender holds the message until then; a crashed sender's claim simply runs out.
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
