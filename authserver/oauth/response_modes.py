"""How an authorization response reaches the client: the response modes, in one place.

Every response /authorize sends to a client's redirect_uri, a code or an error, is built
by `authorization_response`: the grant's success (`grants/authorization_code.py`), the
error responses of the steps and of Authlib (`oauth/errors.py`). It adds `iss` (RFC 9207
section 2: "in authorization responses to the client, including error responses") and
delivers the parameters as the request's `response_mode` asks:

- `query` (RFC 6749 sections 4.1.2 and 4.1.2.1), the code flow's default: a 302 to the
  redirect_uri with the parameters added to its query component.
- `form_post` (OAuth 2.0 Form Post Response Mode section 2): an HTML page whose form
  holds the parameters as hidden fields and is posted to the redirect_uri by the browser
  at once ("auto-submit"). The page is never stored (section 2 asks for cache control), its
  Content-Security-Policy lets exactly its one inline script run (by hash) and lets forms
  go to the redirect_uri only, and without JavaScript a button posts it.

OAuth 2.0 Multiple Response Type Encoding Practices section 2.1: an unknown
`response_mode` is an error; that error (`authorize.check_response_mode`) goes by the
default mode, as do errors found before the mode was read.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from authlib.common.urls import add_params_to_uri
from flask import Response, current_app, render_template
from werkzeug.datastructures import MultiDict

from ..core import capabilities

# The form_post page's one inline script; the CSP names its hash, so nothing else runs.
FORM_POST_SCRIPT = "document.forms[0].submit();"
FORM_POST_SCRIPT_SOURCE = (
    "'sha256-"
    + base64.b64encode(hashlib.sha256(FORM_POST_SCRIPT.encode("ascii")).digest()).decode("ascii")
    + "'"
)
# Characters a CSP source expression's path may hold as they are (CSP3 `path-part`:
# RFC 3986 pchar and "/", minus ";" and "," which separate directives and policies).
_CSP_PATH_SAFE = "/-._~!$&()*+=:@%"

AuthorizationResponse = tuple[int, str, list[tuple[str, str]]]


def response_mode(params: MultiDict[str, str]) -> str:
    """The response mode the request asked for, if we support it; else the default (query)."""
    mode = params.get("response_mode")
    return mode if mode in capabilities.RESPONSE_MODES else capabilities.DEFAULT_RESPONSE_MODE


def authorization_response(
    redirect_uri: str, params: Iterable[tuple[str, str]], mode: str
) -> AuthorizationResponse:
    """The response to the client (status, body, headers), `iss` added (RFC 9207 section 2).

    `redirect_uri` has been verified against the client's registration before.
    """
    issued = [*params, ("iss", str(current_app.config["AUTHSERVER"].issuer))]
    if mode == capabilities.FORM_POST:
        body = render_template(
            "oauth/form_post.html", action=redirect_uri, fields=issued, script=FORM_POST_SCRIPT
        )
        return (
            200,
            body,
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", form_post_policy(redirect_uri)),
                ("Cache-Control", "no-store"),
                ("Pragma", "no-cache"),
            ],
        )
    return 302, "", [("Location", add_params_to_uri(redirect_uri, issued))]


def as_flask_response(response: AuthorizationResponse) -> Response:
    """An `authorization_response` as a Flask response."""
    status, body, headers = response
    return Response(body, status=status, headers=headers)


def form_post_policy(redirect_uri: str) -> str:
    """The form_post page's CSP: our own styles and images, the auto-submit script by its
    hash, and forms only to the redirect_uri (`form-action`), never framed."""
    return (
        f"default-src 'self'; script-src {FORM_POST_SCRIPT_SOURCE}; "
        f"form-action {form_action_source(redirect_uri)}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def form_action_source(redirect_uri: str) -> str:
    """CSP3 section 2.3.1: a source expression that matches the redirect_uri.

    scheme://host[:port]/path, the path exact (CSP ignores the query). A path with
    characters a source expression cannot hold as they are is percent-encoded (CSP
    decodes it before matching). CSP's host grammar has no IPv6 literal, so for
    `http://[::1]` the source names the scheme only (`http:`); the form itself still
    has the one action. A private-use scheme (RFC 8252 section 7.1) is named as a scheme.
    """
    parts = urlsplit(redirect_uri)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or parts.netloc.startswith("["):
        return f"{scheme}:"
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()
    return f"{scheme}://{netloc}{quote(parts.path or '/', safe=_CSP_PATH_SAFE)}"
