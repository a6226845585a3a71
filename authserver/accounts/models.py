"""People who sign in, and the roles they hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.secrets import new_token
from ..extensions import UTCDateTime, db, precise_utcnow, utcnow

BUILTIN_ROLES = ("admin", "developer", "viewer")

user_roles = Table(
    "user_roles",
    db.metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


def new_subject() -> str:
    """OpenID Connect `sub`: stable, never reassigned, and not the e-mail or row id."""
    return new_token(16)


class Role(db.Model):  # type: ignore[name-defined]
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    permissions: Mapped[list[str]] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(db.Model):  # type: ignore[name-defined]
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    # Stored lower-cased; unique, so sign-in by e-mail is unambiguous.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # RFC 6238 shared secret, Fernet-encrypted under the server secret; set while enrolling.
    totp_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # Set once enrolment is confirmed with a valid code: two-step verification is on.
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last accepted time step, so a code cannot be replayed within its window.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    roles: Mapped[list[Role]] = relationship(secondary=user_roles, lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return sorted(role.name for role in self.roles)

    def get_user_id(self) -> str:
        """Authlib hook: the subject identifier."""
        return self.sub

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class AccountToken(db.Model):  # type: ignore[name-defined]
    """A single-use e-mailed link (verify e-mail, reset password), stored only as a hash."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "verify_email" or "reset_password".
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Lets a link be issued for an account created in the same transaction, in one flush.
    user: Mapped[User] = relationship()
    # The address a verification link proves (it may be a new address being changed to).
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RecoveryCode(db.Model):  # type: ignore[name-defined]
    """A one-time two-step verification recovery code, stored as a keyed hash."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthFailure(db.Model):  # type: ignore[name-defined]
    """A failed sign-in factor, counted to slow down guessing.

    Wrong passwords are counted by `account_key` (a hash of the typed address), for
    addresses with and without an account alike, so the count costs the same either way;
    `user_id` is set when the address has an account (its rows go with it).
    """

    __tablename__ = "auth_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 hex of the normalized e-mail address the failure was typed for.
    account_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # "password" or "two_step".
    factor: Mapped[str] = mapped_column(String(16))
    # To the microsecond, unlike other timestamps: the first delay is one second, and a
    # time cut to the second would make it anything from zero to one.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=precise_utcnow, index=True)
