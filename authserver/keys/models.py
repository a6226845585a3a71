"""Signing keys, private parts encrypted at rest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow


class SigningKey(db.Model):  # type: ignore[name-defined]
    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16), index=True)
    # The private JWK as JSON, encrypted with Fernet under a key derived from the secret.
    private_jwk_encrypted: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When it starts signing (keys/schedule.py): published from created_at, signing from
    # here, AUTHSERVER_KEY_PREPUBLISH_SECONDS later for a rotation.
    activates_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When it stops signing (its successor's activates_at); published until its tokens expire.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an emergency rotation: unpublished and refused at once, whatever it signed.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
