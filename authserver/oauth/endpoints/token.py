"""RFC 6749 section 3.2: the token endpoint, one seat for every grant.

The client is authenticated once here (section 3.2.1), with the methods the grant named
by `grant_type` accepts, and must be registered for that grant type (section 5.2
`unauthorized_client`); then the grant's module in `oauth/grants/` answers.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import (
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from flask import Response
from flask import request as flask_request

from ..grants.base import TokenGrant


def create_token_response(server: Any, grants: dict[str, tuple[TokenGrant, list[Any]]]) -> Response:
    """Section 4.1.3, 4.4.2, 6 and RFC 8628 section 3.4: dispatch on `grant_type`.

    Section 5.2: a missing `grant_type` is invalid_request; one we do not serve is
    unsupported_grant_type. Both are answered before the client is authenticated.
    """
    refused: Response | None = server.refuse_repeated_parameters("token")
    if refused is not None:
        return refused
    grant_type = flask_request.values.get("grant_type")
    if not grant_type:
        # Section 3.1: a parameter sent without a value is treated as omitted; section 4
        # makes grant_type REQUIRED, and section 5.2 names a missing one invalid_request.
        missing = InvalidRequestError("Missing 'grant_type' parameter.")
        response: Response = server.handle_response(*missing())
        return response
    found = grants.get(grant_type)
    if found is None:
        response = server.handle_response(*UnsupportedGrantTypeError(grant_type)())
        return response
    grant, extensions = found
    request = grant.token_request(server)
    try:
        client = server.authenticate_client(request, grant.TOKEN_ENDPOINT_AUTH_METHODS)
        if not client.check_grant_type(grant.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'grant_type={grant.GRANT_TYPE}'"
            )
    except OAuth2Error as error:
        response = server.handle_response(*error())
        return response
    return grant.respond(server, request, client, extensions)
