"""Real HTTP(S) servers on loopback for the server's own outgoing requests (core/fetch.py).

`serve(app)` runs a WSGI app in a thread on 127.0.0.1 and yields its base URL; with
`tls=certificate(...)` it speaks HTTPS with a self-signed certificate for 127.0.0.1 and
localhost, whose PEM file the server under test trusts through `fetch_ca_file`.
"""

from __future__ import annotations

import datetime
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Certificate:
    cert_file: str
    key_file: str


def certificate(folder: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (it is its own CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "loopback.pem", folder / "loopback.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(str(cert_file), str(key_file))


@contextmanager
def serve(app: WsgiApp, tls: Certificate | None = None) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 in a thread; yields its base URL (http or https)."""
    ssl_context = (tls.cert_file, tls.key_file) if tls is not None else None
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context
    )
    scheme = "https" if tls is not None else "http"
    thread = threading.Thread(target=server.serve_forever, name="fetch-target", daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def json_document(body: bytes, status: str = "200 OK", **headers: str) -> WsgiApp:
    """A WSGI app answering every request with `body` as application/json."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(status, [("Content-Type", "application/json"), *headers.items()])
        return [body]

    return app
