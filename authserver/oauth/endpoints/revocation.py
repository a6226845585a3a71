"""RFC 7009: token revocation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7009 import RevocationEndpoint as BaseRevocationEndpoint

from ...audit import record
from ...core import capabilities
from ...extensions import db
from ..models import RevokedAccessToken
from ..services import revoke_grant, sub_of_grant
from .presented import PresentedToken, find_token


class RevocationEndpoint(BaseRevocationEndpoint):
    """Refresh tokens revoke their whole grant (section 2.1); access tokens are recorded by jti."""

    CLIENT_AUTH_METHODS = list(capabilities.auth_methods("oauth.revoke"))

    def check_params(self, request: Any, client: Any) -> None:
        """Section 2.1: `token` is required; an unknown hint is ignored, not an error."""
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token'.")

    def authenticate_token(self, request: Any, client: Any) -> PresentedToken | None:
        """Section 2.1: a token of another client is left alone, and the answer is the same 200."""
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is None or not token.check_client(client):
            return None
        return token

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: PresentedToken, request: Any) -> None:
        _audit_revocation(token)
        if token.refresh is not None:
            revoke_grant(token.refresh.grant_id)
            return
        assert token.access is not None
        if db.session.get(RevokedAccessToken, token.access.jti) is None:
            exp = datetime.fromtimestamp(int(token.access.claims["exp"]), UTC)
            db.session.add(RevokedAccessToken(jti=token.access.jti, expires_at=exp))


def _audit_revocation(token: PresentedToken) -> None:
    """Log the revocation (never the token): which kind, of whom, by which client."""
    if token.refresh is not None:
        kind, subject = "refresh_token", sub_of_grant(token.refresh.grant_id)
    else:
        assert token.access is not None
        # The audit log names people by their public sub, not a client's pairwise one.
        grant_id = token.access.grant_id
        claimed = token.access.claims.get("sub")
        kind, subject = "access_token", sub_of_grant(grant_id) if grant_id else claimed
    client_id = token.client_id
    record(
        "token.revoked",
        actor=client_id,
        actor_type="client",
        subject=subject,
        client_id=client_id,
        details={"kind": kind},
    )
