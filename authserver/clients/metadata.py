"""Checks of client metadata values: redirect URIs, origins, resource indicators and scope.

RFC 7591 names the metadata; these rules decide which values a client may register.
`clients.services` applies them on every path (CLI, admin console and API, RFC 7591 and
7592), so each refuses the same values with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypedDict
from urllib.parse import SplitResult, urlsplit

from ..core import capabilities

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# RFC 6749 section 3.3: scope-token = 1*NQCHAR; NQCHAR = %x21 / %x23-5B / %x5D-7E
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
MAX_URI_LENGTH = 2000
# The longest refresh-token grace period a client may register, in seconds. The window
# exists for requests that cross in flight (two tabs refreshing at once, a response lost
# and retried): they arrive within seconds. Each second more is a second in which a
# stolen, already rotated token is honoured instead of revoking its family (RFC 9700
# section 4.14.2). Okta allows 0 to 60 seconds; so do we.
MAX_REFRESH_TOKEN_GRACE_PERIOD = 60


class ClientError(ValueError):
    """Client metadata was refused; the message says which value and why."""


def check_redirect_uris(uris: Iterable[str], label: str) -> list[str]:
    """RFC 9700 section 2.1 and RFC 8252 sections 7.1 and 7.3: where codes may be sent."""
    checked = unique(uris)
    for uri in checked:
        _check_redirect_uri(uri, label)
    return checked


def _check_redirect_uri(uri: str, label: str) -> None:
    """One redirect URI: absolute, no fragment; https, loopback http or a native-app scheme."""
    parts = _split_absolute(uri, label)
    if parts.fragment or "#" in uri:
        raise ClientError(f"{label} {uri!r} must not contain a fragment (RFC 6749 section 3.1.2)")
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise ClientError(f"{label} {uri!r} has no host")
        if parts.username is not None or parts.password is not None:
            raise ClientError(f"{label} {uri!r} must not contain user information")
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ClientError(
                f"{label} {uri!r} must use https; plain http is allowed only on a loopback "
                "host (127.0.0.1, [::1], localhost; RFC 8252 section 7.3)"
            )
        return
    if "." not in scheme:
        raise ClientError(
            f"{label} {uri!r}: the scheme must be https, http on loopback, or a private-use "
            "scheme in reverse domain name form such as com.example.app (RFC 8252 section 7.1)"
        )


def check_logout_uri(uri: str | None, label: str) -> str | None:
    """Back-Channel Logout 1.0 section 2.2 / Front-Channel Logout 1.0 section 2: where a
    client is told of a sign-out; None or "" for none.

    An absolute https URL without a fragment (plain http only on a loopback host, as for
    redirect URIs), which may carry a port, a path and a query.
    """
    if uri is None or uri == "":
        return None
    parts = _split_absolute(uri, label)
    if parts.fragment or "#" in uri:
        raise ClientError(f"{label} {uri!r} must not contain a fragment")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ClientError(f"{label} {uri!r} must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise ClientError(f"{label} {uri!r} must not contain user information")
    try:
        parts.port  # noqa: B018 - raises ValueError on an invalid port
    except ValueError:
        raise ClientError(f"{label} {uri!r} has an invalid port") from None
    if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ClientError(
            f"{label} {uri!r} must use https; plain http is allowed only on a loopback "
            "host (127.0.0.1, [::1], localhost)"
        )
    return uri


class LogoutMetadata(TypedDict, total=False):
    """OpenID Connect Back-Channel and Front-Channel Logout 1.0 client metadata (section 2
    of each); a missing or None value keeps what the client has, "" removes a URI."""

    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool | None
    frontchannel_logout_uri: str | None
    frontchannel_logout_session_required: bool | None


# Each logout metadata field, the capability without which it is refused, and its check.
_LOGOUT_FIELDS: dict[str, tuple[bool, Callable[[Any], Any]]] = {
    "backchannel_logout_uri": (
        capabilities.BACKCHANNEL_LOGOUT,
        lambda uri: check_logout_uri(uri, "backchannel_logout_uri"),
    ),
    "backchannel_logout_session_required": (capabilities.BACKCHANNEL_LOGOUT, bool),
    "frontchannel_logout_uri": (
        capabilities.FRONTCHANNEL_LOGOUT,
        lambda uri: check_logout_uri(uri, "frontchannel_logout_uri"),
    ),
    "frontchannel_logout_session_required": (capabilities.FRONTCHANNEL_LOGOUT, bool),
}


def check_logout_metadata(
    metadata: Any, *, redirect_uris: Iterable[str] | None = None
) -> dict[str, Any]:
    """The given logout metadata, checked; a field whose capability is off is refused.

    With `redirect_uris`, a frontchannel_logout_uri must share the origin of one of them.
    """
    checked: dict[str, Any] = {}
    for key, (supported, check) in _LOGOUT_FIELDS.items():
        value = metadata.get(key)
        if value is None:
            continue
        if not supported and value not in ("", False):
            raise ClientError(f"{key} is not supported by this server")
        checked[key] = check(value)
    if redirect_uris is not None:
        check_frontchannel_origin(checked.get("frontchannel_logout_uri"), redirect_uris)
    return checked


def check_frontchannel_origin(uri: str | None, redirect_uris: Iterable[str]) -> None:
    """Front-Channel Logout 1.0 section 2: "The domain, port, and scheme of this URL MUST be
    the same as that of a registered Redirection URI value"."""
    if not uri:
        return
    origin = _origin_of(uri)
    if not any(_origin_of(redirect) == origin for redirect in redirect_uris):
        raise ClientError(
            f"frontchannel_logout_uri {uri!r} must have the scheme, host and port of a "
            "registered redirect URI"
        )


def _origin_of(uri: str) -> tuple[str, str, int | None]:
    parts = urlsplit(uri)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def check_scope(scope: str) -> str:
    """RFC 6749 section 3.3: space-delimited scope tokens of NQCHAR, each given once."""
    tokens = (scope or "").split(" ")
    tokens = [token for token in tokens if token]
    seen: set[str] = set()
    for token in tokens:
        if not SCOPE_TOKEN.fullmatch(token):
            raise ClientError(
                f"scope value {token!r} is invalid: only printable ASCII except '\"' and '\\' "
                "(RFC 6749 section 3.3)"
            )
        if token in seen:
            raise ClientError(f"scope value {token!r} is given twice")
        seen.add(token)
    return " ".join(tokens)


def check_resources(resources: Iterable[str]) -> list[str]:
    """RFC 8707 section 2: resource indicators are absolute URIs without a fragment."""
    checked = unique(resources)
    for uri in checked:
        parts = _split_absolute(uri, "resource")
        if parts.fragment or "#" in uri:
            raise ClientError(f"resource {uri!r} must not contain a fragment (RFC 8707)")
    return checked


def check_refresh_token_grace_period(seconds: object) -> int:
    """Whole seconds from 0 (no grace, the default) to MAX_REFRESH_TOKEN_GRACE_PERIOD."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ClientError("refresh_token_grace_period_seconds must be a whole number of seconds")
    if not 0 <= seconds <= MAX_REFRESH_TOKEN_GRACE_PERIOD:
        raise ClientError(
            "refresh_token_grace_period_seconds must be from 0 (no grace) to "
            f"{MAX_REFRESH_TOKEN_GRACE_PERIOD} seconds"
        )
    return seconds


def check_web_origins(origins: Iterable[str]) -> list[str]:
    """Origins (RFC 6454) are scheme://host[:port] and nothing else."""
    checked = unique(origins)
    for origin in checked:
        parts = _split_absolute(origin, "web_origin")
        try:
            parts.port  # noqa: B018 - raises ValueError on an invalid port
        except ValueError:
            raise ClientError(f"web_origin {origin!r} has an invalid port") from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or origin.endswith(("?", "#"))
        ):
            raise ClientError(f"web_origin {origin!r} must be scheme://host[:port], no path")
    return unique(_serialize_origin(urlsplit(origin)) for origin in checked)


def _serialize_origin(parts: SplitResult) -> str:
    """RFC 6454 section 6.2: lower-case scheme and host, default port omitted, as browsers send."""
    default_port = {"http": 80, "https": 443}[parts.scheme]
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host.lower()}{port}"


def _split_absolute(uri: str, label: str) -> SplitResult:
    """Split an absolute URI (RFC 3986 section 4.3), refusing spaces and control characters."""
    if not isinstance(uri, str) or not uri:
        raise ClientError(f"{label} must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise ClientError(f"{label} must be at most {MAX_URI_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        raise ClientError(f"{label} {uri!r} must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ClientError(f"{label} {uri!r} is not a valid URI: {exc}") from None
    if not parts.scheme or not URI_SCHEME.fullmatch(parts.scheme) or ":" not in uri:
        raise ClientError(f"{label} {uri!r} must be an absolute URI")
    if not (parts.netloc or parts.path):
        raise ClientError(f"{label} {uri!r} must be an absolute URI")
    return parts


def unique(values: Iterable[str]) -> list[str]:
    """The values in order, each once."""
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def check_name(name: str) -> str:
    """RFC 7591 section 2 client_name: given, at most 200 characters."""
    name = (name or "").strip()
    if not name:
        raise ClientError("client_name must not be empty")
    if len(name) > 200:
        raise ClientError("client_name must be at most 200 characters")
    return name


def check_flows(
    grant_types: Iterable[str], auth_method: str, redirect_uris: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The grant types (allowed with this authentication method) and the redirect URIs,
    at least one of which the authorization_code grant needs."""
    grants = check_grant_types(grant_types)
    check_auth_method(auth_method, grants)
    redirects = check_redirect_uris(redirect_uris, "redirect_uri")
    if "authorization_code" in grants and not redirects:
        raise ClientError("the authorization_code grant needs at least one redirect URI")
    return grants, redirects


def check_grant_types(grant_types: Iterable[str]) -> list[str]:
    """RFC 7591 section 2: grant types this server offers, each once, at least one."""
    grants = unique(grant_types)
    if not grants:
        raise ClientError("at least one grant_type is required")
    for grant in grants:
        if grant not in capabilities.GRANT_TYPES:
            raise ClientError(
                f"unsupported grant_type {grant!r}; "
                f"expected one of {', '.join(capabilities.GRANT_TYPES)}"
            )
    return grants


def check_auth_method(method: str, grants: list[str]) -> str:
    """RFC 7591 section 2: a public client ("none") cannot use client_credentials."""
    if method not in capabilities.CLIENT_AUTH_METHODS:
        raise ClientError(
            f"unsupported token_endpoint_auth_method {method!r}; "
            f"expected one of {', '.join(capabilities.CLIENT_AUTH_METHODS)}"
        )
    for grant in grants:
        if method not in capabilities.auth_methods_for_grant(grant):
            raise ClientError(
                f"a public client (token_endpoint_auth_method {method}) cannot use {grant}"
            )
    return method


def check_id_token_alg(alg: str | None) -> str | None:
    """OpenID Connect Registration section 2: id_token_signed_response_alg, never none."""
    if alg is None or alg == "":
        return None
    if alg not in capabilities.ID_TOKEN_SIGNING_ALGS:
        raise ClientError(
            f"unsupported id_token_signed_response_alg {alg!r}; "
            f"expected one of {', '.join(capabilities.ID_TOKEN_SIGNING_ALGS)}"
        )
    return alg


def check_post_logout_redirect_uris(uris: Iterable[str]) -> list[str]:
    """RP-Initiated Logout 1.0 section 3.1: checked like redirect URIs."""
    return check_redirect_uris(uris, "post_logout_redirect_uri")
