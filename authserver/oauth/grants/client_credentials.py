"""RFC 6749 section 4.4: a service's own token; self-contained, nothing is stored.

This is the hot path of every service-to-service call, so it is answered straight
from the Flask request rather than through Authlib's generic grant pipeline (which
builds an OAuth2Request, looks the grant up, runs hooks): about a third of the
request's cost, measured in bench/. The checks are the same ones, in the same
order, with the same errors: the registered authentication method (Authlib's
`ClientAuthentication`, constant-time secret comparison), the client's grant
types, the requested scope, the RFC 8707 resources.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error, UnauthorizedClientError
from authlib.oauth2.rfc6749.grants import BaseGrant
from flask import Response
from flask import request as flask_request

from ...audit.tally import record_frequent
from ...clients.cache import OAuthClient
from ..services import audience_for, check_resources
from ..tokens import issue_access_token

GRANT_TYPE = "client_credentials"
# Confidential clients only; "none" is not among them (RFC 6749 section 4.4).
TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


def create_token_response(server: Any) -> Response:
    """RFC 6749 section 4.4.2 and 4.4.3: authenticate, check, sign; section 5.2 errors."""
    form = flask_request.form
    try:
        client: OAuthClient = server.authenticate_client(flask_request, TOKEN_ENDPOINT_AUTH_METHODS)
        if not client.check_grant_type(GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={GRANT_TYPE}'"
            )
        scope = form.get("scope")
        server.validate_requested_scope(scope)
        resources = check_resources(client, form.getlist("resource"))
    except OAuth2Error as error:
        return server.handle_response(*error())
    token = generate_token(client, scope, resources)
    record_frequent(
        "token.issued",
        (client.client_id, token["scope"], flask_request.remote_addr),
        actor=client.client_id,
        actor_type="client",
        client_id=client.client_id,
        details={"grant_type": GRANT_TYPE, "scope": token["scope"], "issued": ["access_token"]},
    )
    return server.handle_response(200, token, BaseGrant.TOKEN_RESPONSE_HEADER)


def generate_token(client: OAuthClient, scope: str | None, resources: list[str]) -> dict[str, Any]:
    """RFC 9068 section 2.2: the subject is the client; no refresh token (section 4.4.3)."""
    granted = client.get_allowed_scope(scope) if scope else client.scope
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
