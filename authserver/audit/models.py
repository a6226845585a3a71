"""The audit log: every security event, who did it, to whom, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow


class AuditEvent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Dotted names, e.g. "signin.success", "token.issued", "admin.client.updated".
    event: Mapped[str] = mapped_column(String(64), index=True)
    # Who acted: a person (their `sub`), a client (its client_id), or the system.
    actor_type: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(320), index=True)
    # Whom or what it was done to (a person's `sub`, a client_id, a kid, ...).
    subject: Mapped[str | None] = mapped_column(String(320), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
