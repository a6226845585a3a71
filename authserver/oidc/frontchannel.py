"""OpenID Connect Front-Channel Logout 1.0: the RPs' logout pages, framed on sign-out.

https://openid.net/specs/openid-connect-frontchannel-1_0.html

When this browser signs out (oidc/logout.py), the page that follows renders an iframe
per client that received an ID Token under the ending session and registered a
`frontchannel_logout_uri` (section 4), with `iss` and `sid` in its query when the client
registered `frontchannel_logout_session_required` (section 2). The page's CSP allows
framing exactly those URIs and nothing else; a small script continues to the
post-logout destination once every frame has loaded (or after FRAME_WAIT_SECONDS).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from flask import current_app

from ..clients.cache import load_client
from ..core import capabilities
from ..security.headers import CONTENT_SECURITY_POLICY
from ..sessions.models import LoginSession
from ..sessions.services import clients_of, sid_of

# A host and port a CSP source expression can name as they are (RFC 3986 reg-name, IPv4,
# [IPv6], port); a URI with anything else in its authority is not framed.
_PLAIN_AUTHORITY = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]+)?|\[[0-9A-Fa-f:.]+\](:[0-9]+)?")
# How long the page waits for the frames before it continues anyway (static/js).
FRAME_WAIT_SECONDS = 5


def frontchannel_logout_uris(login_session: LoginSession | None) -> list[str]:
    """Section 4: the URI to frame for each client of the session, in sign-in order."""
    if login_session is None or not capabilities.FRONTCHANNEL_LOGOUT:
        return []
    issuer = current_app.config["AUTHSERVER"].issuer
    sid = sid_of(login_session.id)
    uris: list[str] = []
    for _, client_id in clients_of([login_session.id]):
        client = load_client(client_id)
        if client is None or not client.frontchannel_logout_uri:
            continue
        if not _PLAIN_AUTHORITY.fullmatch(urlsplit(client.frontchannel_logout_uri).netloc):
            continue
        uri = client.frontchannel_logout_uri
        if client.frontchannel_logout_session_required:
            uri = with_query(uri, {"iss": issuer, "sid": sid})
        if uri not in uris:
            uris.append(uri)
    return uris


def with_query(uri: str, params: dict[str, str]) -> str:
    """Section 2: add `iss` and `sid` to the URI's query, keeping what it had."""
    parts = urlsplit(uri)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def content_security_policy(uris: list[str]) -> str:
    """The pages' CSP, plus `frame-src` naming exactly these URIs (CSP Level 3 section 2.3.1).

    A source expression with a path matches that path only; the query is not part of it
    (CSP ignores queries), and `;` `,` and spaces are percent-encoded so no URI can end
    the directive or add another.
    """
    sources = []
    for uri in uris:
        parts = urlsplit(uri)
        path = quote(parts.path or "/", safe="/%:@!$&'()*+=~-._")
        source = f"{parts.scheme}://{parts.netloc}{path}"
        if source not in sources:
            sources.append(source)
    return f"{CONTENT_SECURITY_POLICY}; frame-src {' '.join(sources)}"
