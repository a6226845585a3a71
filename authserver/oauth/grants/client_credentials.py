"""RFC 6749 section 4.4: a service's own token; self-contained, nothing is stored.

This is the hot path of every service-to-service call, so it is answered straight
from the Flask request rather than through Authlib's generic grant object (an
OAuth2Request, a grant instance, hooks): about a third of the request's cost,
measured in bench/. The checks are Authlib's `ClientCredentialsGrant`'s, in the same
order, with the same errors (tests/unit/oauth/test_client_credentials_parity.py runs
both on the same requests): the token endpoint has authenticated the client with the
methods below and checked its grant types; here the requested scope and the RFC 8707
resources are checked and the token is signed. Which scope is granted is decided by the
token generator (`generate_token`, `granted_scope`), which the parity test shares with
the stock grant: asking only for scopes the client is not registered for is invalid_scope
there too, where a bare stock grant would sign a token with an empty scope.
"""

from __future__ import annotations

from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.grants import BaseGrant
from flask import Request, Response
from flask import request as flask_request

from ...audit.tally import record_frequent
from ...clients.cache import OAuthClient
from ...core import capabilities
from ..services import audience_for, check_resources
from ..tokens import issue_access_token


class ClientCredentialsGrant:
    """RFC 6749 section 4.4.2 and 4.4.3: scope, resources, sign; section 5.2 errors."""

    GRANT_TYPE: ClassVar[str] = capabilities.CLIENT_CREDENTIALS
    # Confidential clients only; "none" is not among them (RFC 6749 section 4.4).
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(
        capabilities.auth_methods_for_grant(capabilities.CLIENT_CREDENTIALS)
    )

    @classmethod
    def check_token_endpoint(cls, request: Any) -> bool:
        """Authlib's registry test; the token endpoint looks grants up by `grant_type`."""
        return bool(request.payload.grant_type == cls.GRANT_TYPE)

    @classmethod
    def token_request(cls, server: Any) -> Request:
        """Client authentication reads only the headers and the form: the Flask request."""
        return flask_request

    @classmethod
    def respond(
        cls, server: Any, request: Request, client: OAuthClient, extensions: list[Any]
    ) -> Response:
        """RFC 6749 section 4.4.3: an access token and no refresh token."""
        form = request.form
        try:
            scope = request.values.get("scope")
            server.validate_requested_scope(scope)
            resources = check_resources(client, form.getlist("resource"))
            token = generate_token(client, scope, resources)
        except OAuth2Error as error:
            response: Response = server.handle_response(*error())
            return response
        record_frequent(
            "token.issued",
            (client.client_id, token["scope"], request.remote_addr),
            actor=client.client_id,
            actor_type="client",
            client_id=client.client_id,
            details={
                "grant_type": cls.GRANT_TYPE,
                "scope": token["scope"],
                "issued": ["access_token"],
            },
        )
        response = server.handle_response(200, token, BaseGrant.TOKEN_RESPONSE_HEADER)
        return response


def generate_token(client: OAuthClient, scope: str | None, resources: list[str]) -> dict[str, Any]:
    """RFC 9068 section 2.2: the subject is the client; no refresh token (section 4.4.3)."""
    granted = granted_scope(client, scope)
    access_token, expires_in = issue_access_token(
        client_id=client.client_id,
        subject=client.client_id,
        scope=granted,
        audience=audience_for(resources),
        grant_id=None,
    )
    return {
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": expires_in,
        "scope": granted,
    }


def granted_scope(client: OAuthClient, requested: str | None) -> str:
    """RFC 6749 section 3.3: the scope of a client's own token.

    Without `scope` (or with an empty one, section 3.1), the scopes the client is
    registered for. With one, the requested scopes it is registered for: the server may
    issue fewer than asked and says so in the response's `scope`. When none of them is
    registered there is nothing to issue: section 5.2 invalid_scope.
    """
    if not requested:
        return client.scope
    granted = client.get_allowed_scope(requested)
    if not granted:
        raise InvalidScopeError("None of the requested scopes is registered for this client.")
    return granted
