"""RFC 6749 section 6 with rotation and reuse detection (RFC 9700 section 4.14.2).

Every refresh returns a new refresh token and marks the presented one used; presenting a
used one again is reuse, and revokes the whole family (the `Grant`): the server cannot
tell the thief from the client.

A client may opt into a grace period (`refresh_token_grace_period_seconds`, 0 to 60,
off by default) for requests that cross in flight: two tabs refreshing with the same
token at once, or a response lost and the request retried. Within that many seconds
after a token's rotation, presenting it again returns a new access token and a new
refresh token in the same family (a sibling of the first successor, which stays valid),
as Okta and Ory Hydra do. Only the immediate predecessor of live tokens is graced: once
any token rotated from it has itself been rotated, or the window has passed, or the
family is revoked, presenting it is reuse as before. Grace never revives a revoked
family: a revoked token or grant is refused before grace is considered.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import InvalidGrantError, grants
from sqlalchemy import bindparam, exists, select
from sqlalchemy.orm import aliased, joinedload

from ...accounts.models import User
from ...audit import record
from ...core import capabilities
from ...core.once import run_once, use_once_statement
from ...core.secrets import hash_secret
from ...extensions import db, precise_utcnow, utcnow
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
# The grace rule as one statement, read from the committed rows (so a request that lost
# the race to rotate sees the winner's rotation): the token was rotated at or after
# `rotated_since`, is not revoked, and no token rotated from it has been rotated in turn.
# Plain table columns: it neither flushes the session nor loads objects into it.
_TOKENS = RefreshToken.__table__
_CHILD = aliased(_TOKENS)
GRACED = select(_TOKENS.c.id).where(
    _TOKENS.c.id == bindparam("token_id"),
    _TOKENS.c.revoked_at.is_(None),
    _TOKENS.c.used_at >= bindparam("rotated_since"),
    ~exists().where(
        _CHILD.c.grant_id == _TOKENS.c.grant_id,
        _CHILD.c.parent_id == _TOKENS.c.id,
        _CHILD.c.used_at.is_not(None),
    ),
)


class RefreshTokenGrant(AuthlibTokenGrant, grants.RefreshTokenGrant):
    """Every refresh returns a new refresh token; presenting a rotated one revokes the family,
    unless the client's grace period covers it."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(
        capabilities.auth_methods_for_grant(capabilities.REFRESH_TOKEN)
    )
    INCLUDE_NEW_REFRESH_TOKEN = True
    # The presented token's family (Grant row) and its person, found with it.
    family: Grant
    family_user: User
    # When the presented token was already rotated and is honoured within the grace period.
    graced: bool = False

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
        live = row.expires_at > utcnow() and grant.revoked_at is None
        if row.used_at is not None:
            if not (live and self._within_grace(row)):
                self._reuse_detected(row)
                return None
            self.graced = True
        if not live:
            return None
        self.family = grant
        self.family_user = user
        return row

    def _within_grace(self, row: RefreshToken) -> bool:
        """Whether this rotated token may be presented again (the module docstring's rule).

        Costs nothing for a client without a grace period, and one SELECT otherwise; only
        a rotated token presented again gets here, never an ordinary refresh.
        """
        client = self.request.client
        seconds = client.refresh_token_grace_period_seconds
        if seconds <= 0 or row.client_id != client.get_client_id():
            return False
        parameters = {
            "token_id": row.id,
            "rotated_since": precise_utcnow() - timedelta(seconds=seconds),
        }
        return db.session.connection().execute(GRACED, parameters).first() is not None

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
            parent_id=self.request.refresh_token.id,
        )

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        """Consume the presented token atomically, in the transaction that stores its successor.

        A token already rotated and honoured within the grace period stays as it is.
        """
        if self.graced:
            self._record_graced(refresh_token)
            return
        # Microseconds: the grace period is measured from this instant.
        if run_once(CONSUME, refresh_token.id, now=precise_utcnow()):
            return
        # A concurrent request rotated it first: the same token was used twice. The
        # UPDATE waited for that request's commit, so the rule reads its rotation.
        if self._within_grace(refresh_token):
            self._record_graced(refresh_token)
            return
        self._reuse_detected(refresh_token)
        raise InvalidGrantError("The refresh token was already used.")

    def _record_graced(self, refresh_token: RefreshToken) -> None:
        """Audit log: a rotated token honoured within the grace period (the family lives on)."""
        client_id = self.request.client.get_client_id()
        log.info("refresh token reuse within the grace period for client %s", client_id)
        record(
            "refresh_token.reuse_graced",
            actor=client_id,
            actor_type="client",
            subject=self.family_user.sub,
            client_id=client_id,
            details={"grant_id": refresh_token.grant_id},
        )
