"""Servers for the browser tests: the app under test and helpers to run WSGI apps in threads."""

from __future__ import annotations

import datetime
import ipaddress
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.factories import make_client, make_user


@dataclass
class LiveServer:
    """The app served over HTTP(S) on 127.0.0.1; its issuer is its real URL."""

    url: str
    app: Flask
    # For the test's own HTTP calls (token endpoint, JWKS): trusts the test certificate.
    http: requests.Session = field(default_factory=requests.Session)

    def run(self, work: Callable[[], Any]) -> Any:
        """Call `work` inside the app context (for seeding and for looking at the database)."""
        from authserver.extensions import db

        with self.app.app_context():
            try:
                return work()
            finally:
                db.session.remove()

    def make_user(self, email: str = "alice@example.com", **extra: Any) -> str:
        """A person who can sign in with PASSWORD; returns their `sub`."""
        return str(self.run(lambda: make_user(email=email, **extra).sub))

    def make_client(
        self, redirect_uris: tuple[str, ...], name: str = "Test RP", **extra: Any
    ) -> tuple[str, str | None]:
        """A registered client; returns (client_id, secret)."""

        def create() -> tuple[str, str | None]:
            client, secret = make_client(name=name, redirect_uris=redirect_uris, **extra)
            return client.client_id, secret

        result: tuple[str, str | None] = self.run(create)
        return result


def serve(
    app: Callable[..., Any], *, certificate: tuple[str, str] | None = None
) -> tuple[BaseWSGIServer, str]:
    """Bind a threaded server on 127.0.0.1 (a free port); TLS when given (cert, key) files."""
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=certificate)
    scheme = "https" if certificate else "http"
    return server, f"{scheme}://127.0.0.1:{server.server_port}"


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """A throw-away certificate for 127.0.0.1 (IP SAN); returns (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def run_in_thread(server: BaseWSGIServer, name: str) -> threading.Thread:
    # A short poll interval makes shutdown() quick (the default waits up to half a second).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive(), f"{thread.name} did not stop"
