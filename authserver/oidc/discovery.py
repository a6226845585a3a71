"""Provider metadata: OpenID Connect Discovery 1.0 section 3 and RFC 8414 section 2.

The document depends only on the configuration, so it is built and serialised once
per application, in `init_app`, and every request is served the same bytes.
RFC 8414 section 2 lets OpenID metadata fields appear in the OAuth document, so
both well-known paths serve the same metadata.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from ..accounts.totp import ACR_VALUES_SUPPORTED
from ..config import Config
from ..oauth.authorize import PROMPT_VALUES

EXTENSION = "authserver.discovery"
MAX_AGE = 300

# Scopes whose claims we can provide (no address or phone claims are stored).
SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access", "roles"]
# OpenID Connect Core section 5.1 claims we issue, plus the id_token's own.
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "at_hash",
    "name",
    "email",
    "email_verified",
    "updated_at",
    "roles",
    "org_id",
    "org_roles",
]
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

bp = Blueprint("discovery", __name__)


def metadata(config: Config) -> dict[str, Any]:
    """The provider metadata document for `config.issuer`."""
    issuer = config.issuer
    document: dict[str, Any] = {
        # Discovery 1.0 section 3: exactly the issuer identifier, no trailing slash.
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        # RFC 7009 section 2 and RFC 8414 section 2.
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        # RFC 7662 section 2: introspection is for confidential clients only.
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        # RFC 8628 section 4.
        "device_authorization_endpoint": f"{issuer}/oauth2/device_authorization",
        # OpenID Connect RP-Initiated Logout 1.0 section 2.1.
        "end_session_endpoint": f"{issuer}/logout",
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        # RFC 7636 section 4.2; RFC 9700 section 2.1.1: S256 only.
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "require_request_uri_registration": False,
        # RFC 9207 section 3: `iss` in every authorization response.
        "authorization_response_iss_parameter_supported": True,
        # Core section 3.1.2.1: exactly the values /authorize accepts.
        "prompt_values_supported": list(PROMPT_VALUES),
        # "1": password; "2": password and a second step (accounts/totp.py).
        "acr_values_supported": list(ACR_VALUES_SUPPORTED),
        "ui_locales_supported": ["en"],
    }
    if config.dynamic_registration:
        # RFC 8414 section 2 and Discovery 1.0 section 3: the RFC 7591 endpoint.
        document["registration_endpoint"] = f"{issuer}/oauth2/register"
    return document


def init_app(app: Flask) -> None:
    """Serialise the metadata once and register the two well-known routes."""
    document = metadata(app.config["AUTHSERVER"])
    app.extensions[EXTENSION] = json.dumps(document, separators=(",", ":")).encode()
    app.register_blueprint(bp)


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """OpenID Connect Discovery 1.0 section 4: the provider configuration response."""
    return _metadata_response()


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    """RFC 8414 section 3: the authorization server metadata response."""
    return _metadata_response()


def _metadata_response() -> Response:
    response = Response(current_app.extensions[EXTENSION], mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    # Public document: browser-based relying parties fetch it cross-origin.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
