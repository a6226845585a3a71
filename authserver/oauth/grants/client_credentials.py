"""RFC 6749 section 4.4: a service's own token; self-contained, nothing is stored."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import grants

from ..services import audience_for, check_resources
from ..tokens import issue_access_token


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Confidential clients only; the token's subject is the client (RFC 9068 section 2.2)."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        """RFC 6749 section 4.4.2, plus the RFC 8707 `resource` the token is meant for."""
        super().validate_token_request()
        self.request.resources = check_resources(
            self.request.client, self.request.form.getlist("resource")
        )

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        client = self.request.client
        granted = client.get_allowed_scope(scope) if scope else client.scope
        access_token, expires_in = issue_access_token(
            client_id=client.client_id,
            subject=client.client_id,
            scope=granted,
            audience=audience_for(self.request.resources),
            grant_id=None,
        )
        return {
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_in": expires_in,
            "scope": granted,
        }
