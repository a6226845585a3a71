"""RFC 7662: token introspection, for resource servers and the clients themselves."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as BaseIntrospectionEndpoint
from flask import current_app

from ...accounts.models import User
from ...clients.cache import OAuthClient
from ...clients.services import get_client
from ...core import capabilities
from ...extensions import db
from ...oidc.subjects import subject_for
from ..models import Grant
from .presented import PresentedToken, find_token


class IntrospectionEndpoint(BaseIntrospectionEndpoint):
    """Confidential clients introspect their own tokens, resource servers any access token;
    anything else, and anything not live, answers `{"active": false}`."""

    CLIENT_AUTH_METHODS = list(capabilities.auth_methods("oauth.introspect"))

    def check_params(self, request: Any, client: Any) -> None:
        """Section 2.1: `token` is required; the hint only orders the search."""
        if not request.form.get("token"):
            raise InvalidRequestError("Missing 'token'.")

    def query_token(self, token_string: str, token_type_hint: str | None) -> PresentedToken | None:
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: PresentedToken, client: OAuthClient, request: Any) -> bool:
        """Section 4: only the client the token was issued to, or a resource server.

        A resource server (a client registered with `is_resource_server`) learns about the
        access tokens presented to it; refresh tokens are only ever the client's own. Any
        other caller is answered `{"active": false}`, as for a token that does not exist.
        """
        if token.check_client(client):
            return True
        return token.access is not None and client.is_resource_server

    def create_introspection_payload(self, token: PresentedToken | None) -> dict[str, Any]:
        if token is None or not token.is_active():
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token: PresentedToken) -> dict[str, Any]:
        """Section 2.2: the token's metadata; `sub` is the one its client knows (OIDC Core 8)."""
        if token.access is not None:
            claims = token.access.claims
            payload: dict[str, Any] = {
                key: claims[key]
                for key in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti")
                if key in claims
            }
            payload.update(active=True, token_type="Bearer")
            if "auth_time" in claims:
                payload["auth_time"] = claims["auth_time"]
            return payload
        assert token.refresh is not None
        row = token.refresh
        grant = db.session.get(Grant, row.grant_id)
        user = db.session.get(User, grant.user_id) if grant is not None else None
        payload = {
            "active": True,
            "token_type": "refresh_token",
            "scope": row.scope,
            "client_id": row.client_id,
            "iss": current_app.config["AUTHSERVER"].issuer,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.created_at.timestamp()),
        }
        client = get_client(row.client_id)
        if user is not None and client is not None:
            payload["sub"] = subject_for(user, client)
        return payload
