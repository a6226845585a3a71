"""RFC 6749 section 4.1: the authorization code grant, one-time codes stored as hashes."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, grants
from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload

from ...accounts.models import User
from ...core import capabilities
from ...core.once import run_once, use_once_statement
from ...core.secrets import hash_secret, new_token
from ...extensions import db, utcnow
from ..interaction import AuthorizationContext
from ..models import AuthorizationCode, Grant
from ..response_modes import authorization_response
from ..services import revoke_replayed_grant, start_token_family
from .base import AuthlibTokenGrant

log = logging.getLogger(__name__)
# The code and its person (with roles, for the `roles` claim) in one query, built once.
CODE_WITH_USER = (
    select(AuthorizationCode, User)
    .join(User, User.id == AuthorizationCode.user_id)
    .where(AuthorizationCode.code_hash == bindparam("code_hash"))
    .options(joinedload(User.roles))
)
# RFC 6749 section 4.1.2: a code is redeemed once (core.once, built once for this hot path;
# expiry is checked on the row read just before).
CONSUME = use_once_statement(AuthorizationCode, expires_column=None)
# RFC 6749 section 5.2 invalid_grant, in the client's terms. A code of another client reads
# as unknown; only the client the code was issued to learns that it expired.
INVALID_CODE = "The authorization code is unknown, was issued to another client, or was used."
EXPIRED_CODE = "The authorization code has expired; start a new authorization request."


class AuthorizationCodeGrant(AuthlibTokenGrant, grants.AuthorizationCodeGrant):
    """Codes live `authorization_code_ttl` seconds (60 by default) and are redeemed once."""

    TOKEN_ENDPOINT_AUTH_METHODS = list(
        capabilities.auth_methods_for_grant(capabilities.AUTHORIZATION_CODE)
    )
    # The authorization request as the steps left it; set by the view (oauth/views.py).
    context: AuthorizationContext | None = None
    # Token request: the code's person, and the token family (Grant row) it starts.
    code_user: User
    family: Grant

    def generate_authorization_code(self) -> str:
        return new_token()

    def create_authorization_response(self, redirect_uri: str, grant_user: Any) -> Any:
        """RFC 6749 section 4.1.2: the code and `state`, delivered by the request's response
        mode (oauth/response_modes.py: a redirect, or OAuth 2.0 Form Post) with `iss`."""
        ctx = self.context
        assert ctx is not None
        if not grant_user:
            raise AccessDeniedError(redirect_uri=redirect_uri)
        self.request.user = grant_user
        code = self.generate_authorization_code()
        self.save_authorization_code(code, self.request)
        params = [("code", code)]
        if self.request.payload.state:
            params.append(("state", self.request.payload.state))
        return authorization_response(redirect_uri, params, ctx.response_mode)

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code's hash with everything the token request and id_token need.

        What is stored comes from the authorization steps' context (oauth/authorize.py),
        set by the view before Authlib issues the code.
        """
        config = current_app.config["AUTHSERVER"]
        ctx = self.context
        assert ctx is not None and ctx.user is not None and ctx.session is not None
        params, session = ctx.params, ctx.session
        now = utcnow()
        db.session.add(
            AuthorizationCode(
                code_hash=hash_secret(code),
                client_id=ctx.client.client_id,
                user_id=ctx.user.id,
                session_id=session.id,
                # Stored as sent: RFC 6749 section 4.1.3 wants it repeated only if it was sent.
                redirect_uri=params.get("redirect_uri") or "",
                # What the steps granted (the client's and the person's limits, the consent).
                scope=ctx.scope,
                nonce=params.get("nonce") or None,
                code_challenge=params["code_challenge"],
                code_challenge_method=params["code_challenge_method"],
                resource=ctx.resources or None,
                claims=ctx.claims,
                auth_time=session.auth_time,
                acr=session.acr,
                amr=list(session.amr or []),
                organization_id=ctx.organization.id if ctx.organization is not None else None,
                expires_at=now + timedelta(seconds=config.authorization_code_ttl),
            )
        )
        # The redirect carrying the code leaves only after the code is stored.
        db.session.commit()

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode:
        """Find and consume the code in one atomic step; a second redemption is a replay.

        RFC 6749 section 4.1.2: if a code is used more than once, the request is denied
        and the tokens already issued from it are revoked. Every refusal is invalid_grant
        (section 5.2); an expired code says so.
        """
        if not isinstance(code, str) or len(code) > 512:
            raise InvalidGrantError(INVALID_CODE)
        found = (
            db.session.execute(CODE_WITH_USER, {"code_hash": hash_secret(code)})
            .unique()
            .one_or_none()
        )
        if found is None or found[0].client_id != client.get_client_id():
            raise InvalidGrantError(INVALID_CODE)
        row, self.code_user = found
        now = utcnow()
        if row.used_at is not None:
            self._revoke_replayed(row)
            raise InvalidGrantError(INVALID_CODE)
        if row.expires_at <= now:
            raise InvalidGrantError(EXPIRED_CODE)
        if not run_once(CONSUME, row.id, now=now):
            # Another request redeemed it between our read and our write: still a replay.
            # Our update waited for the winner's commit, so its grant is there to revoke.
            log.warning("authorization code redeemed twice at once for client %s", row.client_id)
            db.session.rollback()
            self._revoke_replayed(row)
            raise InvalidGrantError(INVALID_CODE)
        return row

    def _revoke_replayed(self, row: AuthorizationCode) -> None:
        log.warning("authorization code replayed for client %s; revoking its grant", row.client_id)
        revoke_replayed_grant("authorization_code.replayed", row.grant_id, row.client_id)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to delete: the code was consumed atomically and is kept to detect replays."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        user = self.code_user
        return user if user.is_active else None

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Start the token family for this code and issue its first tokens."""
        code: AuthorizationCode = self.request.authorization_code
        grant, token = start_token_family(code, self.request.client, user)
        code.grant_id = grant.id
        self.family = grant
        return token
