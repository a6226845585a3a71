"""What the token endpoint asks of a grant (RFC 6749 section 4), and Authlib's grants made to fit.

The token endpoint (`oauth/endpoints/token.py`) authenticates the client once, with the
methods the grant named by `grant_type` accepts, checks that the client is registered for
that grant type, and hands the request to the grant's `respond`. A grant is one module in
this package: Authlib-based ones (authorization_code, refresh_token, device_code) mix in
`AuthlibTokenGrant`; the client_credentials hot path answers straight from the Flask
request.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Response

from ...audit.services import record
from ...extensions import db

# The names of the tokens a token response may carry (RFC 6749 section 5.1, OIDC Core 3.1.3.3).
TOKEN_KINDS = ("access_token", "refresh_token", "id_token")


class TokenGrant(Protocol):
    """A grant the token endpoint can dispatch to."""

    GRANT_TYPE: ClassVar[str]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]]

    @classmethod
    def token_request(cls, server: Any) -> Any:
        """The request object client authentication reads (headers, form, payload)."""

    @classmethod
    def respond(cls, server: Any, request: Any, client: Any, extensions: list[Any]) -> Response:
        """RFC 6749 section 5: the token response (or error) for an authenticated client."""


class AuthlibTokenGrant:
    """Runs an Authlib grant for a client the endpoint already authenticated.

    RFC 6749 section 5.1: the rows a grant adds are committed before the response leaves;
    every error is rolled back.
    """

    request: Any

    @classmethod
    def token_request(cls, server: Any) -> Any:
        return server.create_oauth2_request(None)

    @classmethod
    def respond(cls, server: Any, request: Any, client: Any, extensions: list[Any]) -> Response:
        request.client = client
        grant: Any = cls(request, server)  # type: ignore[call-arg]
        for extension in extensions:
            extension(grant)
        try:
            grant.validate_token_request()
            response: Response = server.handle_response(*grant.create_token_response())
        except OAuth2Error as error:
            db.session.rollback()
            return server.handle_response(*error())
        except Exception:
            db.session.rollback()
            raise
        record_token_issued(request, response)
        db.session.commit()
        return response

    def authenticate_token_endpoint_client(self) -> Any:
        """RFC 6749 section 3.2.1: done once, by the token endpoint, before dispatching here."""
        return self.request.client


def record_token_issued(oauth_request: Any, response: Response) -> None:
    """Audit log: which client got tokens by which grant, for whom; never the token values."""
    body = response.get_json(silent=True) or {}
    client_id = oauth_request.client.get_client_id()
    user = oauth_request.user
    record(
        "token.issued",
        actor=client_id,
        actor_type="client",
        subject=user.sub if user is not None else None,
        client_id=client_id,
        details={
            "grant_type": oauth_request.payload.grant_type,
            "scope": body.get("scope", ""),
            "issued": sorted(key for key in TOKEN_KINDS if key in body),
        },
    )
