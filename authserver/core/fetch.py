"""The server's own outgoing HTTP requests, with rules against server-side request forgery.

Client metadata names URLs the server itself then calls: a `sector_identifier_uri` whose
JSON document it fetches (OpenID Connect Registration 1.0 section 5, Core section 8.1)
and a `backchannel_logout_uri` it POSTs logout tokens to (Back-Channel Logout 1.0
section 2.5). Whoever registers a client chooses them, so each request is one an outsider
aims from inside our network (OWASP Server-Side Request Forgery Prevention Cheat Sheet).
Every such request goes through `fetch_json` or `post_form`, which apply one set of rules
under a `FetchPolicy`:

- https, or plain http only when the policy allows it and the address connected to is a
  loopback one (client metadata allows `http://127.0.0.1/...` back-channel URIs);
- the host is resolved once; every address it resolves to must be a public one (no
  loopback, private, link-local, shared, reserved, multicast or unspecified address)
  unless the policy allows private addresses (setting `fetch_allow_private_addresses`:
  allowed outside production, refused in production unless set), and the connection goes
  to the very address checked, so a second DNS answer cannot point it elsewhere (DNS
  rebinding); TLS still verifies the certificate for the host name;
- a connect timeout, a timeout for each read, and a deadline for the whole exchange (a
  watchdog shuts the socket down, so a server trickling bytes cannot hold us either);
- redirects are not followed, and at most `max_bytes` of the answer is read.

The standard library's `http.client` does the HTTP: it neither follows redirects nor
reads proxy settings from the environment, so nothing here can be steered around these
rules by configuration the policy does not see.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

USER_AGENT = "authserver"
MAX_URL_LENGTH = 2000


class FetchError(ValueError):
    """The request was refused or failed under the rules; the message says why (no secret)."""


@dataclass(frozen=True)
class FetchPolicy:
    """The rules of one kind of request; `from_config` gives the server's."""

    allow_private_addresses: bool = False
    # A PEM file of CA certificates trusted instead of the system's.
    ca_file: str | None = None
    # Plain http too, but only to a loopback address (nothing crosses a network).
    allow_loopback_http: bool = False
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    max_bytes: int = 64 * 1024

    @property
    def deadline(self) -> float:
        """Seconds the whole exchange may take: connecting, then reading."""
        return self.connect_timeout + self.read_timeout

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> FetchPolicy:
        """The configured policy (`fetch_allow_private_addresses`, `fetch_ca_file`)."""
        return cls(
            allow_private_addresses=bool(config.fetch_allow_private_addresses),
            ca_file=config.fetch_ca_file or None,
            **overrides,
        )


@dataclass(frozen=True)
class Answer:
    """The status of an answer and at most `max_bytes` of its body."""

    status: int
    body: bytes
    # The body was longer than `max_bytes`; `body` holds its first `max_bytes`.
    truncated: bool = False


def fetch_json(url: str, policy: FetchPolicy) -> Any:
    """GET the JSON document at `url`: a 200 answer of at most `max_bytes`; else FetchError."""
    answer = _exchange("GET", url, policy, None, {"Accept": "application/json"})
    if 300 <= answer.status < 400:
        raise FetchError("the server answered with a redirect, which is not followed")
    if answer.status != 200:
        raise FetchError(f"the server answered with HTTP status {answer.status}")
    if answer.truncated:
        raise FetchError(f"the server answered with more than {policy.max_bytes} bytes")
    try:
        return json.loads(answer.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FetchError("the server did not return JSON") from None


def post_form(url: str, form: dict[str, str], policy: FetchPolicy) -> Answer:
    """POST `form` as application/x-www-form-urlencoded: the answer's status and first
    `max_bytes` (a 3xx is just a status); FetchError when refused, failed or too slow."""
    body = urlencode(form).encode("ascii")
    headers = {"Accept": "*/*", "Content-Type": "application/x-www-form-urlencoded"}
    return _exchange("POST", url, policy, body, headers)


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


def _exchange(
    method: str, url: str, policy: FetchPolicy, body: bytes | None, headers: dict[str, str]
) -> Answer:
    """Send one request to the checked address and read the answer, all by the deadline."""
    scheme, host, port, target = _checked_url(url, policy)
    address = resolve(host, port, policy)
    if scheme == "http" and not ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
        raise FetchError("the URL must use https (plain http only to a loopback address)")
    connection = _connection(scheme, host, address, port, policy)
    watchdog = _Watchdog(connection, policy.deadline)
    response: http.client.HTTPResponse | None = None
    try:
        connection.request(
            method,
            target,
            body=body,
            headers={**headers, "User-Agent": USER_AGENT, "Connection": "close"},
        )
        response = connection.getresponse()
        content, truncated = _read_at_most(response, policy.max_bytes)
    except TimeoutError:
        raise FetchError("the server did not answer in time") from None
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.expired:
            raise FetchError("the server did not answer in time") from None
        raise FetchError(f"the request failed ({type(exc).__name__})") from None
    finally:
        watchdog.stop()
        if response is not None:
            response.close()
        connection.close()
    if watchdog.expired:  # cut short: what was read may be only part of the answer
        raise FetchError("the server did not answer in time")
    return Answer(response.status, content, truncated)


def _checked_url(url: str, policy: FetchPolicy) -> tuple[str, str, int, str]:
    """Scheme, host, port and request target of an absolute URL the policy allows."""
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH or any(ord(c) <= 0x20 for c in url):
        raise FetchError("the URL is not valid")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FetchError("the URL is not valid") from None
    allowed = ("https", "http") if policy.allow_loopback_http else ("https",)
    if parts.scheme not in allowed:
        raise FetchError("the URL must use https")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise FetchError("the URL must name a host and no user information")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port, target


def _read_at_most(response: http.client.HTTPResponse, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of the body, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        # read1: whatever has arrived, so the watchdog's cut ends the loop at once.
        chunk = response.read1(min(8192, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    content = b"".join(chunks)
    return content[:limit], size > limit


class _Watchdog:
    """Shuts a connection's socket down after `seconds`: a read blocked on it returns."""

    def __init__(self, connection: _PinnedHTTPConnection, seconds: float) -> None:
        self.expired = False
        self._connection = connection
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.expired = True
        sock = self._connection.live_socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._timer.cancel()


def _connection(
    scheme: str, host: str, address: str, port: int, policy: FetchPolicy
) -> _PinnedHTTPConnection:
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
        # The socket the watchdog cuts. Not `sock`: `getresponse` sets that to None when
        # the answer ends with the connection, while the response still reads from it.
        self.live_socket: socket.socket | None = None

    def _open_socket(self) -> socket.socket:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        sock.settimeout(self._read_timeout)
        self.sock = self.live_socket = sock
        return sock

    def connect(self) -> None:
        self._open_socket()


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The same over TLS: the certificate is verified for `host`, not the address."""

    default_port = 443

    def __init__(
        self, host: str, address: str, port: int, policy: FetchPolicy, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, address, port, policy)
        self._context = context

    def connect(self) -> None:
        tls = self._context.wrap_socket(
            self._open_socket(), server_hostname=self.host, do_handshake_on_connect=False
        )
        self.sock = self.live_socket = tls
        tls.do_handshake()  # after the watchdog can see the socket: it can cut a slow one
