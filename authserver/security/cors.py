"""CORS (the Fetch standard's CORS protocol) for browser-based clients such as single-page apps.

Only the endpoints a browser client calls from its own origin answer CORS (the
registry's `Cors` class, core/capabilities.py): the token, userinfo and revocation
endpoints, for the web origins registered on some client (`Client.web_origins`, looked
up by clients.origins), and the public JWKS and discovery documents, for any origin
(`Access-Control-Allow-Origin: *`; the thin layer, core/hotpath.py, sends what this hook
added). The authorization endpoint and the hosted pages never do: the browser navigates
there.

No `Access-Control-Allow-Credentials`: browser clients send their tokens in the
`Authorization` header or the body, never with our cookies. A registered origin
is enough at the token endpoint, since the client still authenticates in the body
(RFC 6749 section 2.3; a public client by its `client_id` and PKCE verifier).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response, current_app, request

from ..core.capabilities import CORS_ENDPOINTS, PUBLIC_ENDPOINTS, REGISTERED_ORIGIN_ENDPOINTS

EXTENSION = "authserver.cors_origin_lookup"
ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Authorization, Content-Type"
PREFLIGHT_MAX_AGE = 600

# Whether some active client registered a web origin (clients.origins.is_registered_origin).
OriginLookup = Callable[[str], bool]


def init_app(app: Flask, is_registered_origin: OriginLookup) -> None:
    """Answer preflight requests before the views and add CORS headers after them.

    Which endpoints answer CORS, and for which origins, is the registry's `Cors` class
    (core/capabilities.py); the registered origins come from `is_registered_origin`.
    """
    app.extensions[EXTENSION] = is_registered_origin
    app.before_request(answer_preflight)
    app.after_request(add_cors_headers)


def _allowed_origin() -> str | None:
    """The value for Access-Control-Allow-Origin on this request, or None for no CORS."""
    endpoint = request.endpoint
    if endpoint in PUBLIC_ENDPOINTS:
        return "*"
    origin = request.headers.get("Origin")
    if endpoint not in REGISTERED_ORIGIN_ENDPOINTS or not origin:
        return None
    # Browsers send the serialised origin (RFC 6454 section 6.2), as we store it.
    if len(origin) > 255 or not current_app.extensions[EXTENSION](origin):
        return None
    return origin


def answer_preflight() -> Response | None:
    """before_request: a CORS preflight (OPTIONS with Access-Control-Request-Method)."""
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    if request.endpoint not in CORS_ENDPOINTS:
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
