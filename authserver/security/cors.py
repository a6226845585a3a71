"""CORS (the Fetch standard's CORS protocol) for browser-based clients such as single-page apps.

Only the endpoints a browser client calls from its own origin answer CORS: the
token, userinfo and revocation endpoints, for the web origins registered on some
client (`Client.web_origins`), and the public JWKS and discovery documents, for
any origin (`Access-Control-Allow-Origin: *`, set by their views). The
authorization endpoint and the hosted pages never do: the browser navigates there.

No `Access-Control-Allow-Credentials`: browser clients send their tokens in the
`Authorization` header or the body, never with our cookies. A registered origin
is enough at the token endpoint, since the client still authenticates in the body
(RFC 6749 section 2.3; a public client by its `client_id` and PKCE verifier).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, request
from sqlalchemy import select

from ..clients.models import Client
from ..extensions import db

CACHE_KEY = "authserver.cors"
# Endpoints a browser client calls with a registered origin.
REGISTERED_ORIGIN_ENDPOINTS = frozenset({"oauth.token", "oauth.revoke", "oidc.userinfo"})
# Public documents: any origin may read them.
PUBLIC_ENDPOINTS = frozenset(
    {"keys.jwks", "discovery.openid_configuration", "discovery.oauth_authorization_server"}
)
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = 600
# An unknown origin reloads the list at most this often (a client registered on
# another instance is seen within seconds, and a stream of unknown origins cannot
# turn into a stream of queries).
MISS_RELOAD_INTERVAL = 2.0


@dataclass(frozen=True)
class _Origins:
    """The registered web origins as read from the database at `loaded_at` (monotonic)."""

    origins: frozenset[str]
    loaded_at: float


def init_app(app: Flask) -> None:
    """Answer preflight requests before the views and add CORS headers after them."""
    app.before_request(answer_preflight)
    app.after_request(add_cors_headers)


def registered_origins() -> frozenset[str]:
    """Every web origin registered on an active client, read from the database."""
    rows = db.session.scalars(select(Client.web_origins).where(Client.is_active.is_(True)))
    return frozenset(origin for origins in rows for origin in origins or ())


def is_registered_origin(origin: str) -> bool:
    """Whether some active client registered this origin; cached per process for cache_ttl."""
    now = time.monotonic()
    cached: _Origins | None = current_app.extensions.get(CACHE_KEY)
    ttl = current_app.config["AUTHSERVER"].cache_ttl
    if cached is not None:
        if origin in cached.origins and now - cached.loaded_at < ttl:
            return True
        if origin not in cached.origins and now - cached.loaded_at < min(ttl, MISS_RELOAD_INTERVAL):
            return False
    fresh = _Origins(registered_origins(), now)
    current_app.extensions[CACHE_KEY] = fresh
    return origin in fresh.origins


def invalidate_origin_cache() -> None:
    """Forget the cached origins in this process (after a client changed)."""
    current_app.extensions.pop(CACHE_KEY, None)


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin on this request, or None for no CORS."""
    endpoint = request.endpoint
    if endpoint in PUBLIC_ENDPOINTS:
        return "*"
    origin = request.headers.get("Origin")
    if endpoint not in REGISTERED_ORIGIN_ENDPOINTS or not origin:
        return None
    # Browsers send the serialised origin (RFC 6454 section 6.2), as we store it.
    if len(origin) > 255 or not is_registered_origin(origin):
        return None
    return origin


def answer_preflight() -> Response | None:
    """before_request: a CORS preflight (OPTIONS with Access-Control-Request-Method)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    endpoint = request.endpoint
    if endpoint not in REGISTERED_ORIGIN_ENDPOINTS and endpoint not in PUBLIC_ENDPOINTS:
        return None
    response = Response(status=204)
    allowed = _allowed_origin()
    if allowed is not None:
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
    return response


def add_cors_headers(response: Response) -> Response:
    """after_request: allow the origin on the CORS endpoints; other paths are left alone."""
    endpoint = request.endpoint
    if endpoint in REGISTERED_ORIGIN_ENDPOINTS:
        # The answer depends on Origin: shared caches must not mix them up.
        if "Vary" in response.headers:
            response.vary.add("Origin")
        else:  # the usual case, without parsing a header set
            response.headers["Vary"] = "Origin"
    allowed = _allowed_origin()
    if allowed is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = allowed
    if request.method != "OPTIONS" and allowed != "*":
        # Clients read the RFC 6750 challenge on a refused userinfo call.
        response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
    return response
