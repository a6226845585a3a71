"""RFC 6749 section 6 with rotation and reuse detection (RFC 9700 section 4.14.2)."""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, grants
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from ...accounts.models import User
from ...core import capabilities
from ...core.once import run_once, use_once_statement
from ...core.secrets import hash_secret
from ...extensions import db, utcnow
from ..models import Grant, RefreshToken
from ..services import issue_user_tokens, revoke_replayed_grant
from .base import AuthlibTokenGrant

log = logging.getLogger(__name__)
# The presented token, its grant and its person (with roles, for the `roles` claim) in
# one query, built once: statement construction and ORM loading dominate this path.
TOKEN_GRANT_USER = (
    select(RefreshToken, Grant, User)
    .join(Grant, Grant.id == RefreshToken.grant_id)
    .join(User, User.id == Grant.user_id)
    .where(RefreshToken.token_hash == bindparam("token_hash"))
    .options(joinedload(User.roles))
)
# RFC 9700 section 4.14.2: consume the token only if nobody else did (core.once, built
# once: no ORM session synchronisation, no autoflush). Expiry is checked on the row read.
CONSUME = use_once_statement(
    RefreshToken, expires_column=None, when=(RefreshToken.__table__.c.revoked_at.is_(None),)
)


class RefreshTokenGrant(AuthlibTokenGrant, grants.RefreshTokenGrant):
    """Every refresh returns a new refresh token; presenting a rotated one revokes the family."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(
        capabilities.auth_methods_for_grant(capabilities.REFRESH_TOKEN)
    )
    INCLUDE_NEW_REFRESH_TOKEN = True
    # The presented token's family (Grant row) and its person, found with it.
    family: Grant
    family_user: User

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """A live refresh token; a rotated one is reuse and revokes its whole grant."""
        if not isinstance(refresh_token, str) or len(refresh_token) > 512:
            return None
        found = (
            db.session.execute(TOKEN_GRANT_USER, {"token_hash": hash_secret(refresh_token)})
            .unique()
            .one_or_none()
        )
        if found is None:
            return None
        row, grant, user = found
        if row.revoked_at is not None:
            return None
        if row.used_at is not None:
            self._reuse_detected(row)
            return None
        if row.expires_at <= utcnow() or grant.revoked_at is not None:
            return None
        self.family = grant
        self.family_user = user
        return row

    def _reuse_detected(self, row: RefreshToken) -> None:
        log.warning(
            "refresh token reuse for client %s; revoking grant %s", row.client_id, row.grant_id
        )
        revoke_replayed_grant("refresh_token.reuse_detected", row.grant_id, row.client_id)

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        user = self.family_user
        return user if user.is_active else None

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """New tokens under the same grant; the scope may only narrow (RFC 6749 section 6)."""
        return issue_user_tokens(
            grant=self.family,
            client=self.request.client,
            user=user,
            scope=scope or self.family.scope,
            include_refresh_token=True,
        )

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Consume the presented token atomically, in the transaction that stores its successor."""
        if not run_once(CONSUME, refresh_token.id):
            # A concurrent request rotated it first: the same token was used twice.
            self._reuse_detected(refresh_token)
            raise InvalidGrantError("The refresh token was already used.")
