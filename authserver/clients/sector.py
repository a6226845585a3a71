"""Subject types and sector identifiers of clients (OpenID Connect Core section 8.1).

A client registers `subject_type` ("public" or "pairwise", OIDC Registration 1.0
section 2) and, optionally, a `sector_identifier_uri` (section 2 and 5). Clients of one
sector see the same pairwise `sub` for a person; clients of different sectors see
unrelated ones (oidc/subjects.py computes them).

Section 8.1: the sector identifier is the host of the `sector_identifier_uri` when one
is registered, else the host of the redirect URIs, which must then all share one host.
Registration section 5: the `sector_identifier_uri` is an https URL of a JSON array
that lists every registered redirect URI; the server fetches it when the client
registers it or changes its redirect URIs (core/fetch.py, with its SSRF rules).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from ..core import capabilities
from ..core.fetch import FetchError, FetchPolicy, fetch_json
from .metadata import MAX_URI_LENGTH, ClientError


def sector_identifier(
    subject_type: str, sector_identifier_uri: str | None, redirect_uris: Iterable[str]
) -> str | None:
    """Section 8.1: the sector a pairwise client belongs to; None for a public client.

    Raises ClientError for a pairwise client whose sector cannot be told (several
    redirect hosts, or none, without a sector_identifier_uri).
    """
    if subject_type != capabilities.PAIRWISE_SUBJECT:
        return None
    if sector_identifier_uri:
        host = urlsplit(sector_identifier_uri).hostname
        if not host:
            raise ClientError(f"sector_identifier_uri {sector_identifier_uri!r} has no host")
        return host
    hosts = {urlsplit(uri).hostname for uri in redirect_uris}
    if len(hosts) != 1 or None in hosts:
        # Several hosts, none (a device-flow client), or a private-use scheme (RFC 8252
        # section 7.1), which has no host: nothing names the sector.
        raise ClientError(
            "a pairwise client whose redirect_uris are not all on one https or loopback host "
            "needs a sector_identifier_uri (OpenID Connect Core section 8.1)"
        )
    return str(hosts.pop())


def check_subject(
    subject_type: str | None,
    sector_identifier_uri: str | None,
    redirect_uris: list[str],
) -> tuple[str, str | None]:
    """The client's subject type (the server's default when None) and sector_identifier_uri.

    OIDC Registration section 2: the type must be one this server offers; section 5: a
    sector_identifier_uri must be https and list every redirect URI (it is fetched).
    """
    config = current_app.config["AUTHSERVER"]
    chosen = subject_type or config.default_subject_type
    offered = capabilities.subject_types(config)
    if chosen not in offered:
        raise ClientError(
            f"unsupported subject_type {chosen!r}; expected one of {', '.join(offered)}"
        )
    uri = sector_identifier_uri or None
    if uri is not None:
        check_sector_identifier_uri(uri, redirect_uris, FetchPolicy.from_config(config))
    sector_identifier(chosen, uri, redirect_uris)
    return chosen, uri


def check_sector_identifier_uri(uri: str, redirect_uris: list[str], policy: FetchPolicy) -> None:
    """Registration section 5: an https URL whose JSON array holds every redirect URI."""
    if not isinstance(uri, str) or len(uri) > MAX_URI_LENGTH:
        raise ClientError(f"sector_identifier_uri must be a URL of at most {MAX_URI_LENGTH} chars")
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.hostname or parts.fragment or "#" in uri:
        raise ClientError(f"sector_identifier_uri {uri!r} must be an https URL without fragment")
    try:
        listed: Any = fetch_json(uri, policy)
    except FetchError as exc:
        raise ClientError(f"sector_identifier_uri could not be used: {exc}") from None
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ClientError(f"sector_identifier_uri {uri!r} must hold a JSON array of URIs")
    missing = [redirect for redirect in redirect_uris if redirect not in listed]
    if missing:
        raise ClientError(
            f"sector_identifier_uri {uri!r} does not list the redirect_uri {missing[0]!r} "
            "(OpenID Connect Registration section 5)"
        )
