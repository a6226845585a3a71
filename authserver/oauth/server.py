"""Authlib's AuthorizationServer, wired with our grants, storage and secure defaults."""

from __future__ import annotations

import json
import logging
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc6749.authenticate_client import authenticate_client_secret_basic
from flask import Flask, Response, current_app
from flask import request as flask_request

from ..clients.cache import OAuthClient, load_client
from ..core import capabilities
from ..oidc.extension import OpenIDConnect
from ..security.limits import repeated_parameter
from .client_auth import ClientAuthentication
from .endpoints import token as token_endpoint
from .endpoints.device_authorization import DeviceAuthorizationEndpoint
from .endpoints.introspection import IntrospectionEndpoint
from .endpoints.revocation import RevocationEndpoint
from .errors import UnsupportedResponseTypeError, redirect_error
from .grants.authorization_code import AuthorizationCodeGrant
from .grants.base import TokenGrant
from .grants.client_credentials import ClientCredentialsGrant
from .grants.device_code import DeviceCodeGrant
from .grants.pkce import RequiredS256CodeChallenge
from .grants.refresh_token import RefreshTokenGrant
from .response_modes import response_mode

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
NO_STORE_HEADERS = list(NO_STORE.items())


def tolerant_client_secret_basic(query_client: Any, request: Any) -> Any:
    """RFC 6749 section 2.3.1: a malformed Basic header fails authentication, it is not a crash.

    Authlib's parser raises ValueError on "Basic" without credentials and
    UnicodeDecodeError on credentials that are not UTF-8.
    """
    try:
        return authenticate_client_secret_basic(query_client, request)
    except ValueError:
        return None


class IssuerOAuth2Request(FlaskOAuth2Request):
    """Authlib's request, addressed by our configured issuer rather than the socket's URL.

    Authlib refuses plain-http request URLs; behind a TLS-terminating proxy the
    WSGI URL is http while the issuer is https. Transport security is decided by
    the issuer (production requires https), not by how the proxy reached us.
    """

    def __init__(self, request: Any, issuer: str) -> None:
        OAuth2Request.__init__(
            self, method=request.method, uri=issuer + request.full_path, headers=request.headers
        )
        self._request = request
        self.payload = FlaskOAuth2Payload(request)


class AuthorizationServer(FlaskAuthorizationServer):
    """Token responses are sent only after their rows are committed, and never cached."""

    def __init__(self) -> None:
        super().__init__()
        # The token endpoint's grants by `grant_type`: one lookup a request.
        self.token_grants: dict[str, tuple[TokenGrant, list[Any]]] = {}
        self.client_authentication = ClientAuthentication(self.query_client)

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        """RFC 6749 section 2.3 at every endpoint: `oauth/client_auth.py`."""
        return self.client_authentication(request, methods, endpoint)

    def register_client_auth_method(self, method: str, func: Any) -> None:
        self.client_authentication.register(method, func)

    def get_authorization_grant(self, request: Any) -> Any:
        """RFC 6749 section 4.1.2.1: an unsupported response_type names the supported ones;
        a missing one is invalid_request.

        Answered here rather than by Authlib, whose error echoes the requested value (and
        cannot be built when it holds a character section 5.2 forbids in a description).
        """
        response_type = request.payload.response_type
        if response_type in capabilities.RESPONSE_TYPES:
            return super().get_authorization_grant(request)
        redirect_uri = self.verified_redirect_uri(request)
        if not response_type:
            # A REQUIRED parameter (section 4.1.1) missing: invalid_request, as for grant_type.
            raise InvalidRequestError(
                "Missing 'response_type' parameter.", redirect_uri=redirect_uri
            )
        raise UnsupportedResponseTypeError(redirect_uri=redirect_uri)

    def verified_redirect_uri(self, request: Any) -> str | None:
        """Section 4.1.2.1: where an error may be redirected, as Authlib decides it: the
        requested redirect_uri if registered for the client, else its only one; None for
        an unknown client or an unregistered URI (an error page instead)."""
        client = self.query_client(request.payload.client_id)
        if client is None:
            return None
        requested = request.payload.redirect_uri
        if not requested:
            return client.get_default_redirect_uri()
        return requested if client.check_redirect_uri(requested) else None

    def create_oauth2_request(self, request: Any) -> IssuerOAuth2Request:
        if isinstance(request, IssuerOAuth2Request):
            return request
        return IssuerOAuth2Request(flask_request, current_app.config["AUTHSERVER"].issuer)

    def query_client(self, client_id: str) -> OAuthClient | None:
        return load_client(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Grants add their rows themselves; `grants.base.AuthlibTokenGrant` commits them."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No listeners yet; the audit log will subscribe here."""

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        if isinstance(payload, dict):
            payload = json.dumps(payload, separators=(",", ":"))
        if status_code != 302:
            headers = [(k, v) for k, v in headers if k not in NO_STORE] + NO_STORE_HEADERS
        return Response(payload, status=status_code, headers=headers)

    def handle_error_response(self, request: Any, error: Any) -> Response:
        """An error Authlib raises after the redirect_uri was verified goes to the client by
        the request's response mode, with `iss` (oauth/errors.py); others as Authlib says."""
        if getattr(error, "redirect_uri", None):
            return redirect_error(error, response_mode(flask_request.values))
        response: Response = super().handle_error_response(request, error)
        return response

    def register_grant(self, grant_cls: Any, extensions: list[Any] | None = None) -> None:
        """Authlib's registry, and the token endpoint's by `grant_type`."""
        super().register_grant(grant_cls, extensions)
        if hasattr(grant_cls, "check_token_endpoint"):
            self.token_grants[grant_cls.GRANT_TYPE] = (grant_cls, extensions or [])

    def create_token_response(self, request: Any = None) -> Response:
        """RFC 6749 section 3.2: `oauth/endpoints/token.py`."""
        return token_endpoint.create_token_response(self, self.token_grants)

    def create_endpoint_response(self, name: str, request: Any = None) -> Response:
        """Revocation and introspection; what they write (a revoked token's record) is
        committed by the request's unit of work (core.uow), only when there is any."""
        refused = self.refuse_repeated_parameters(name)
        if refused is not None:
            return refused
        response: Response = super().create_endpoint_response(name, request)
        return response

    def refuse_repeated_parameters(self, endpoint: str) -> Response | None:
        """RFC 6749 section 3.1: parameters MUST NOT be included more than once."""
        name = repeated_parameter(flask_request.values, endpoint)
        if name is None:
            return None
        error = InvalidRequestError(f"Multiple '{name}' parameters.")
        return self.handle_response(*error())


def create_authorization_server(app: Flask) -> AuthorizationServer:
    """Register exactly the grants and endpoints we support."""
    # Authlib logs issued tokens at DEBUG level; secrets are never logged.
    logging.getLogger("authlib").setLevel(logging.INFO)
    server = AuthorizationServer()
    server.init_app(app)
    check_grant_types()
    server.register_client_auth_method(
        capabilities.CLIENT_SECRET_BASIC, tolerant_client_secret_basic
    )
    server.register_grant(AuthorizationCodeGrant, [RequiredS256CodeChallenge(), OpenIDConnect()])
    server.register_grant(RefreshTokenGrant, [OpenIDConnect()])
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(DeviceCodeGrant, [OpenIDConnect()])
    for endpoint in AUTHLIB_ENDPOINTS:
        server.register_endpoint(endpoint)
    # RFC 9207's `iss` is added by oauth/response_modes.py to every authorization response
    # (Authlib's IssuerParameter only knows redirects, not form_post).
    return server


# The token endpoint's grants, one module each in grants/ (RFC 6749 section 4).
GRANTS = (AuthorizationCodeGrant, RefreshTokenGrant, ClientCredentialsGrant, DeviceCodeGrant)
AUTHLIB_ENDPOINTS = (RevocationEndpoint, IntrospectionEndpoint, DeviceAuthorizationEndpoint)


def check_grant_types() -> None:
    """The registered grants are exactly the registry's grant types (and so discovery's).

    Each grant and endpoint reads its client authentication methods from
    core/capabilities.py; a grant type served but not listed, or listed but not served,
    stops the app from starting.
    """
    served = {grant.GRANT_TYPE for grant in GRANTS}
    if served != set(capabilities.GRANT_TYPES):
        raise RuntimeError(
            "grant types differ from authserver/core/capabilities.py: "
            + ", ".join(sorted(served ^ set(capabilities.GRANT_TYPES)))
        )
