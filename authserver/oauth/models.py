"""Authorization codes, grants (token families), refresh tokens and revocations.

Codes and refresh tokens are stored only as SHA-256 hashes. A `Grant` is one
authorization by one person to one client: every refresh token rotated from it
and every access token issued under it belong to it, so revoking the grant
revokes the whole family (RFC 9700 section 4.14).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import UTCDateTime, db, utcnow


class AuthorizationCode(db.Model):  # type: ignore[name-defined]
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    nonce: Mapped[str | None] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(16))
    resource: Mapped[list[str] | None] = mapped_column(JSON)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set atomically by the one redemption that wins; a second one is a replay.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The grant created at redemption, revoked if the code is replayed.
    grant_id: Mapped[str | None] = mapped_column(String(32))
    # The organization the person picked for this authorization, if any.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )

    # Authlib's AuthorizationCodeMixin.

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class Grant(db.Model):  # type: ignore[name-defined]
    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    resource: Mapped[list[str] | None] = mapped_column(JSON)
    claims: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Tokens of this grant carry `org_id` and the roles held in this organization.
    organization_id: Mapped[int | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )


class RefreshToken(db.Model):  # type: ignore[name-defined]
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Set atomically when rotated; presenting it again is reuse.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Indexed: `authserver cleanup` purges on expires_at OR revoked_at, which PostgreSQL
    # answers from both indexes at once (a BitmapOr) instead of reading the whole table.
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The token this one was rotated from (None for a family's first): the refresh grace
    # period graces only the parent of tokens none of which was rotated yet. Not a foreign
    # key: cleanup deletes a used parent before its live children.
    parent_id: Mapped[int | None] = mapped_column(Integer)

    # Authlib's TokenMixin, as far as the refresh grant and revocation use it.

    def check_client(self, client: Any) -> bool:
        return bool(self.client_id == client.get_client_id())

    def get_scope(self) -> str:
        return self.scope


class RevokedAccessToken(db.Model):  # type: ignore[name-defined]
    """A JWT access token revoked before it expired (RFC 7009); kept until `expires_at`."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(db.Model):  # type: ignore[name-defined]
    """What a person allowed a client, so the consent page is not shown again."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeviceCode(db.Model):  # type: ignore[name-defined]
    """RFC 8628: a device authorization request, from issue to redemption."""

    __tablename__ = "device_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Normalised (upper case, no separator); short-lived, so unique among live codes.
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text, default="")
    resource: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Section 3.5: the minimum polling interval, raised by slow_down.
    interval: Mapped[int] = mapped_column(Integer, default=5)
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # pending -> approved | denied; approved -> used (set atomically at redemption).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str | None] = mapped_column(String(64))
    auth_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    acr: Mapped[str | None] = mapped_column(String(64))
    grant_id: Mapped[str | None] = mapped_column(String(32))
