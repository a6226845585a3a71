"""Provider metadata: OpenID Connect Discovery 1.0 section 3 and RFC 8414 section 2.

The document depends only on the configuration, so it is built and serialised once
per application, in `init_app`, and every request is served the same bytes: by the
thin layer (core/hotpath.py) for plain GET and HEAD requests, by the views otherwise.
RFC 8414 section 2 lets OpenID metadata fields appear in the OAuth document, so
both well-known paths serve the same metadata.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, current_app

from ..accounts.totp import ACR_VALUES_SUPPORTED
from ..config import Config
from ..core import capabilities, hotpath
from ..core.hotpath import Document

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
    "sid",
    "name",
    "email",
    "email_verified",
    "updated_at",
    "roles",
    "org_id",
    "org_roles",
]

bp = Blueprint("discovery", __name__)


def metadata(config: Config) -> dict[str, Any]:
    """The provider metadata document for `config.issuer`.

    Endpoints, client authentication, grant and response types, prompt values, PKCE
    methods and signing algorithms are read from the registry (core/capabilities.py),
    which the endpoints themselves read: what is advertised is what works.
    """
    # Discovery 1.0 section 3: exactly the issuer identifier, no trailing slash.
    document: dict[str, Any] = {"issuer": config.issuer}
    document.update(endpoint_metadata(config))
    document.update(
        {
            "scopes_supported": list(SCOPES_SUPPORTED),
            "response_types_supported": list(capabilities.RESPONSE_TYPES),
            "response_modes_supported": list(capabilities.RESPONSE_MODES),
            "grant_types_supported": list(capabilities.GRANT_TYPES),
            "subject_types_supported": list(capabilities.subject_types(config)),
            "id_token_signing_alg_values_supported": list(capabilities.ID_TOKEN_SIGNING_ALGS),
            # RFC 7636 section 4.2; RFC 9700 section 2.1.1: S256 only.
            "code_challenge_methods_supported": list(capabilities.CODE_CHALLENGE_METHODS),
            "claims_supported": list(CLAIMS_SUPPORTED),
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": True,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "require_request_uri_registration": False,
            # RFC 9207 section 3: `iss` in every authorization response.
            "authorization_response_iss_parameter_supported": True,
            # Core section 3.1.2.1: exactly the values /authorize accepts.
            "prompt_values_supported": list(capabilities.PROMPT_VALUES),
            # "1": password; "2": password and a second step (accounts/totp.py).
            "acr_values_supported": list(ACR_VALUES_SUPPORTED),
            "ui_locales_supported": ["en"],
        }
    )
    document.update(logout_metadata())
    return document


def logout_metadata() -> dict[str, bool]:
    """Back-Channel Logout 1.0 section 2.1 and Front-Channel Logout 1.0 section 3."""
    return {
        "backchannel_logout_supported": capabilities.BACKCHANNEL_LOGOUT,
        "backchannel_logout_session_supported": capabilities.BACKCHANNEL_LOGOUT,
        "frontchannel_logout_supported": capabilities.FRONTCHANNEL_LOGOUT,
        "frontchannel_logout_session_supported": capabilities.FRONTCHANNEL_LOGOUT,
    }


def endpoint_metadata(config: Config) -> dict[str, Any]:
    """Each advertised endpoint's URL under the issuer, with the client authentication it takes.

    RFC 8414 section 2 (`*_endpoint_auth_methods_supported`); an endpoint behind a
    setting (RFC 7591 registration) is advertised only where the setting is on.
    """
    fields: dict[str, Any] = {}
    for endpoint in capabilities.ENDPOINTS:
        if endpoint.metadata is None or endpoint.path is None:
            continue
        if endpoint.advertised_when and not getattr(config, endpoint.advertised_when):
            continue
        fields[endpoint.metadata] = config.issuer + endpoint.path
        if endpoint.auth_methods_metadata:
            fields[endpoint.auth_methods_metadata] = list(endpoint.auth_methods)
    return fields


def init_app(app: Flask) -> None:
    """Serialise the metadata once; register the two well-known routes, served thin."""
    body = json.dumps(metadata(app.config["AUTHSERVER"]), separators=(",", ":")).encode()
    cache_control = ("Cache-Control", f"public, max-age={MAX_AGE}")
    app.extensions[EXTENSION] = Document(body, "application/json", (cache_control,))
    app.register_blueprint(bp)
    hotpath.serve(app, "discovery.openid_configuration", metadata_document)
    hotpath.serve(app, "discovery.oauth_authorization_server", metadata_document)


def metadata_document(app: Flask) -> Document:
    """The serialised metadata of `app` (cross-origin readable: capabilities lists it public)."""
    document: Document = app.extensions[EXTENSION]
    return document


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    """OpenID Connect Discovery 1.0 section 4: the provider configuration response."""
    return metadata_document(current_app).response()


@bp.get("/.well-known/oauth-authorization-server")
def oauth_authorization_server() -> Response:
    """RFC 8414 section 3: the authorization server metadata response."""
    return metadata_document(current_app).response()
