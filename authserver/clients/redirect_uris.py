"""Whether a redirect URI sent in a request is one the client registered: the one rule.

RFC 9700 section 4.1.3 wants exact string matching. RFC 8252 section 7.3 makes one
exception that is a MUST: for a loopback IP redirect URI (`http://127.0.0.1[:port]/path`
or `http://[::1][:port]/path`) the authorization server "MUST allow any port to be
specified at the time of the request", because a native app picks a free port when it
starts. Section 8.3 says `localhost` "functions similarly" (and is NOT RECOMMENDED: a
name can resolve elsewhere and the app may listen on another interface than the one the
browser reaches): it gets the same port rule, and registering it draws a warning
(`loopback_advice`). Everything else, the scheme, the host as written, the path and the
query, still matches exactly; user information and fragments never match.

Every comparison of a requested redirect URI with the registered ones calls
`redirect_uri_allowed`: Authlib's `check_redirect_uri` on our client snapshot (the
authorization endpoint and the consent answer) and RP-initiated logout's
`post_logout_redirect_uri`. The token endpoint does not compare with the registration: RFC
6749 section 4.1.3 wants its `redirect_uri` "identical" to the one the code was issued
for, and Authlib's `AuthorizationCodeGrant.validate_token_request` compares the two
strings exactly (so a code issued to one loopback port is not redeemed naming another).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# RFC 8252 section 7.3 (IPv4 and IPv6 loopback literals) and section 8.3 (`localhost`).
LOOPBACK_REDIRECT_HOSTS = ("127.0.0.1", "[::1]", "localhost")
RECOMMENDED_LOOPBACK_HOST = "127.0.0.1"
LOOPBACK_SCHEME = "http://"
# RFC 3986 section 3.2.3: port = *DIGIT; a port is a decimal number up to 65535.
_PORT = re.compile(r"[0-9]{1,5}")


def redirect_uri_allowed(registered: Iterable[str], requested: str) -> bool:
    """RFC 9700 section 4.1.3 and RFC 8252 section 7.3: `requested` is one of `registered`,
    compared exactly except for the port of a loopback redirect URI."""
    if not isinstance(requested, str):
        return False
    registered = tuple(registered)
    if requested in registered:
        return True
    wanted = _without_loopback_port(requested)
    if wanted is None:
        return False
    return any(_without_loopback_port(uri) == wanted for uri in registered)


def _without_loopback_port(uri: str) -> tuple[str, str] | None:
    """(host, path and query) of an `http` loopback URI; None for any other URI.

    Parsed by hand, without normalizing: the host and the rest are compared as written.
    """
    if not uri.startswith(LOOPBACK_SCHEME) or "#" in uri:
        return None
    rest = uri[len(LOOPBACK_SCHEME) :]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, path_and_query = rest[:end], rest[end:]
    host, port = _split_port(authority)
    if host not in LOOPBACK_REDIRECT_HOSTS:
        return None  # user information ("a@127.0.0.1") and every other host end up here
    if port is not None and not (_PORT.fullmatch(port) and 0 < int(port) <= 65535):
        return None
    return host, path_and_query


def _split_port(authority: str) -> tuple[str, str | None]:
    """`host[:port]` into host and port (None when there is no colon)."""
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            return authority, None
        host, after = authority[: close + 1], authority[close + 1 :]
        if not after:
            return host, None
        return (host, after[1:]) if after.startswith(":") else (authority, None)
    if ":" in authority:
        host, port = authority.rsplit(":", 1)
        return host, port
    return authority, None


def is_loopback_redirect_uri(uri: str) -> bool:
    """RFC 8252 section 7.3: an `http` redirect URI on a loopback host, any port."""
    return _without_loopback_port(uri) is not None


def loopback_advice(uris: Iterable[str]) -> list[str]:
    """RFC 8252 section 8.3: a warning for each `http://localhost` redirect URI."""
    return [
        f"redirect URI {uri!r} uses 'localhost', which RFC 8252 section 8.3 does NOT "
        f"RECOMMEND; register http://{RECOMMENDED_LOOPBACK_HOST}:<port>/... (or http://[::1]) "
        "instead: the port may vary at sign-in either way"
        for uri in uris
        if (parts := _without_loopback_port(uri)) is not None and parts[0] == "localhost"
    ]
