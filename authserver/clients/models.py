"""Relying parties and services registered with the server (RFC 7591 metadata names)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import UTCDateTime, db, utcnow

if TYPE_CHECKING:
    from ..accounts.models import Role

# The roles a client holds itself: they bound what its own tokens (and, for the admin
# API, any token issued to it) may do, like a person's roles bound what they may do.
client_roles = Table(
    "client_roles",
    db.metadata,
    Column("client_id", Integer, ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", Integer, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class Client(db.Model):  # type: ignore[name-defined]
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    # SHA-256 of the secret: secrets are high-entropy, so a slow hash buys nothing.
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    response_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    id_token_signed_response_alg: Mapped[str | None] = mapped_column(String(16))
    # Put the claims of the granted scopes (profile, email) in the id_token too, not only
    # at userinfo (OIDC Core 5.4), for apps that read only the id_token (oidc/claims.py).
    claims_in_id_token: Mapped[bool] = mapped_column(Boolean, default=False)
    # OpenID Connect Back-Channel Logout 1.0 section 2.2: where logout tokens are POSTed,
    # and whether the client needs `sid` in them.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # OpenID Connect Front-Channel Logout 1.0 section 2: loaded in an iframe on sign-out,
    # with `iss` and `sid` in its query when the client requires them.
    frontchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    frontchannel_logout_session_required: Mapped[bool] = mapped_column(Boolean, default=False)
    # RFC 8707 resource indicators this client may ask for as the token audience.
    resources: Mapped[list[str]] = mapped_column(JSON, default=list)
    # OIDC Core section 8: the `sub` this client receives, "public" or "pairwise", and the
    # sector_identifier_uri (OIDC Registration section 5) that groups it with others.
    subject_type: Mapped[str] = mapped_column(String(16), default="public")
    sector_identifier_uri: Mapped[str | None] = mapped_column(String(2000))
    # Browser origins allowed to call the token and userinfo endpoints (CORS).
    web_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    # First-party clients skip the consent page.
    skip_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # RFC 7662 section 4: a resource server may introspect tokens issued to other clients.
    is_resource_server: Mapped[bool] = mapped_column(Boolean, default=False)
    # Seconds after a refresh token's rotation during which presenting it again is not
    # reuse (oauth/grants/refresh_token.py); 0, the default, means no grace.
    refresh_token_grace_period_seconds: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )
    # Access tokens issued to this client before this moment are revoked (set when its
    # secret is rotated or it is disabled), so a leaked secret's tokens stay dead.
    tokens_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # RFC 7592: the hash of the registration access token of a dynamically registered client.
    registration_access_token_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    roles: Mapped[list[Role]] = relationship(secondary=client_roles, lazy="selectin")

    @property
    def role_names(self) -> list[str]:
        return sorted(role.name for role in self.roles)

    def __repr__(self) -> str:
        return f"<Client {self.client_id} {self.name!r}>"


class InitialAccessToken(db.Model):  # type: ignore[name-defined]
    """RFC 7591 section 3: what an admin hands out to allow one dynamic registration."""

    __tablename__ = "initial_access_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The client registered with it, once used.
    client_id: Mapped[str | None] = mapped_column(String(64))
