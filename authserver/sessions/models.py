"""Server-side browser sign-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..accounts.models import User
from ..extensions import UTCDateTime, db, utcnow


class LoginSession(db.Model):  # type: ignore[name-defined]
    __tablename__ = "login_sessions"

    # SHA-256 of the cookie value: a database leak does not hand out live sessions.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the person last proved who they are (OpenID Connect `auth_time`).
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Indexed, like expires_at: `authserver cleanup` purges on either without a full scan.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    user: Mapped[User] = relationship(lazy="joined")


class SessionClient(db.Model):  # type: ignore[name-defined]
    """A client that received an ID Token under a sign-in session.

    OpenID Connect Back-Channel Logout 1.0 section 2.5 and Front-Channel Logout 1.0
    section 4: when the session ends, these are the relying parties to tell. Kept as long
    as the session (grants are purged as soon as their tokens expire, sessions are not).
    """

    __tablename__ = "session_clients"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("login_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
