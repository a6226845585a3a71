"""The server's own outgoing HTTP requests, made safe against server-side request forgery.

Relying parties register URLs the server itself then calls (a `backchannel_logout_uri`).
Anyone who can register a client could otherwise point the server at its own network
(OWASP SSRF Prevention Cheat Sheet). So every request here:

- resolves the host once and connects to the address checked, never resolving again
  (a second DNS answer cannot swap in another address: no DNS rebinding);
- refuses private, loopback, link-local, multicast and reserved addresses unless the
  caller allows them (development, or AUTHSERVER_ALLOW_PRIVATE_OUTBOUND=true);
- has a timeout for connecting and for each read, and twice that for the whole exchange;
- follows no redirect (a 3xx is just a status) and reads at most MAX_RESPONSE bytes.
TLS is verified against the URL's host name as usual.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

MAX_RESPONSE = 4096
USER_AGENT = "authserver"


class EgressError(Exception):
    """The request was refused or failed; the message is safe to log (no secret)."""


@dataclass(frozen=True)
class Answer:
    """The status and at most MAX_RESPONSE bytes of the body."""

    status: int
    body: bytes


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (not private, loopback, link-local...)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The first address of `host` we may connect to; EgressError if none (or any) is refused.

    Every address the name resolves to must be allowed: a name that answers with both a
    public and a private address is refused rather than raced.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise EgressError(f"cannot resolve {host}: {error}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise EgressError(f"cannot resolve {host}")
    if not allow_private:
        for address in addresses:
            if not is_public_address(address):
                raise EgressError(f"{host} resolves to a non-public address {address}")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an address resolved and checked beforehand."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, its certificate verified for `host`."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def post_form(url: str, fields: dict[str, str], *, timeout: float, allow_private: bool) -> Answer:
    """POST `fields` as application/x-www-form-urlencoded to `url`; the answer, unfollowed.

    Raises EgressError when the address is refused or the request fails or times out.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise EgressError("only http and https URLs are called")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise EgressError("invalid port") from None
    address = resolve(parts.hostname, port, allow_private=allow_private)
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, address, timeout)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    body = urlencode(fields).encode("ascii")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
    }
    # `timeout` bounds each connect and read; the watchdog bounds the whole exchange, so a
    # server trickling a byte at a time cannot hold the sender for long either.
    watchdog = threading.Timer(2 * timeout, _cut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.read(MAX_RESPONSE))
    except (OSError, http.client.HTTPException) as error:
        raise EgressError(f"{type(error).__name__}: {error}") from None
    finally:
        watchdog.cancel()
        connection.close()


def _cut(connection: http.client.HTTPConnection) -> None:
    """Shut the connection's socket down: a read blocked on it returns at once."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
