"""Outgoing fetches of documents a client points the server at, with SSRF rules.

Client metadata may name URLs the server must fetch itself: `sector_identifier_uri`
(OpenID Connect Registration 1.0 section 5 and Core section 8.1), later `jwks_uri`.
Whoever registers a client chooses that URL, so each fetch is a request an outsider
aims from inside our network (OWASP "Server Side Request Forgery"). Every such fetch
goes through `fetch_json`, which applies one set of rules:

- https only (unless a policy says otherwise, for the fetch tests' plain HTTP server);
- the host is resolved once; every address it resolves to must be a public one (no
  loopback, private, link-local, shared, reserved, multicast or unspecified address)
  unless `fetch_allow_private_addresses` is set, and the connection goes to the very
  address that was checked, so a second DNS answer cannot point it elsewhere (DNS
  rebinding); TLS still verifies the certificate for the host name;
- short connect and read timeouts, and a deadline for the whole response;
- a response size limit, checked on the declared length and on the bytes read;
- redirects are not followed: any answer but 200 is an error;
- the body must be JSON.

The standard library's `http.client` does the HTTP: it neither follows redirects nor
reads proxy settings from the environment, so nothing here can be steered around
these rules by configuration the policy does not see.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "authserver"


class FetchError(ValueError):
    """The document could not be fetched under the rules; the message says why (no secrets)."""


@dataclass(frozen=True)
class FetchPolicy:
    """The rules of one kind of fetch; `from_config` gives the server's."""

    allow_private_addresses: bool = False
    ca_file: str | None = None
    https_only: bool = True
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    max_bytes: int = 64 * 1024

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> FetchPolicy:
        """The configured policy (`fetch_allow_private_addresses`, `fetch_ca_file`)."""
        return cls(
            allow_private_addresses=bool(config.fetch_allow_private_addresses),
            ca_file=config.fetch_ca_file or None,
            **overrides,
        )


def fetch_json(url: str, policy: FetchPolicy) -> Any:
    """GET `url` under `policy` and parse its body as JSON; raises FetchError."""
    body = fetch(url, policy)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FetchError(f"{url} did not return JSON") from None


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """GET `url` under `policy`: the body of a 200 answer, at most `policy.max_bytes`."""
    scheme, host, port, target = _checked_url(url, policy)
    address = resolve(host, port, policy)
    connection = _connection(scheme, host, address, port, policy)
    deadline = time.monotonic() + policy.connect_timeout + policy.read_timeout
    try:
        connection.request("GET", target, headers=_headers())
        response = connection.getresponse()
        if response.status != 200:
            if 300 <= response.status < 400:
                raise FetchError(f"{url} answered with a redirect, which is not followed")
            raise FetchError(f"{url} answered with HTTP status {response.status}")
        return _read_limited(url, response, policy, deadline)
    except TimeoutError:
        raise FetchError(f"{url} did not answer in time") from None
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(f"{url} could not be fetched ({type(exc).__name__})") from None
    finally:
        connection.close()


def _checked_url(url: str, policy: FetchPolicy) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target of an absolute http(s) URL the policy allows."""
    if not isinstance(url, str) or len(url) > 2000 or any(ord(ch) <= 0x20 for ch in url):
        raise FetchError("the URL is not valid")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError(f"{url} is not a valid URL") from None
    allowed = ("https",) if policy.https_only else ("https", "http")
    if parts.scheme not in allowed:
        raise FetchError(f"{url} must use https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise FetchError(f"{url} must name a host and no user information")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port, target


def resolve(host: str, port: int, policy: FetchPolicy) -> str:
    """The address to connect to: the host's first, once every one it resolves to is allowed.

    Refusing a host when any of its addresses is private (not only the one used) keeps a
    name that resolves to both a public and an internal address from being usable at all.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise FetchError(f"the host {host} could not be resolved") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise FetchError(f"the host {host} could not be resolved")
    if not policy.allow_private_addresses:
        for address in addresses:
            if not is_public_address(address):
                raise FetchError(f"the host {host} resolves to a non-public address")
    return addresses[0]


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not loopback, private, link-local,
    shared (RFC 6598), reserved, multicast or unspecified), IPv4-mapped IPv6 included."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_unspecified or ip.is_reserved)


def _connection(
    scheme: str, host: str, address: str, port: int, policy: FetchPolicy
) -> http.client.HTTPConnection:
    if scheme == "https":
        context = ssl.create_default_context(cafile=policy.ca_file)
        return _PinnedHTTPSConnection(host, address, port, policy, context)
    return _PinnedHTTPConnection(host, address, port, policy)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked `address`, sending `host` in the Host header."""

    def __init__(self, host: str, address: str, port: int, policy: FetchPolicy) -> None:
        super().__init__(host, port, timeout=policy.connect_timeout)
        self._address = address
        self._read_timeout = policy.read_timeout

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.settimeout(self._read_timeout)
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS: the certificate is verified for `host`, not the address."""

    default_port = 443

    def __init__(
        self, host: str, address: str, port: int, policy: FetchPolicy, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, address, port, policy)
        self._context = context

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(self._open_socket(), server_hostname=self.host)


def _headers() -> dict[str, str]:
    return {"Accept": "application/json", "User-Agent": USER_AGENT, "Connection": "close"}


def _read_limited(
    url: str, response: http.client.HTTPResponse, policy: FetchPolicy, deadline: float
) -> bytes:
    """The body, refused once it passes `max_bytes` or the deadline (a slow trickle)."""
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > policy.max_bytes:
        raise FetchError(f"{url} answered with more than {policy.max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError(f"{url} did not answer in time")
        # read1: whatever has arrived (read would wait for all 8 KiB, past the deadline).
        chunk = response.read1(min(8192, policy.max_bytes + 1 - size))
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > policy.max_bytes:
            raise FetchError(f"{url} answered with more than {policy.max_bytes} bytes")
        chunks.append(chunk)
