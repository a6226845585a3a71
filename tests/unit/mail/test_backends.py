"""SMTP URL parsing and delivery through a real SMTP server on loopback."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authserver.mail.backends import MailError, deliver_smtp, parse_mail_url, write_outbox
from tests.browser.mailbox import free_port
from tests.mail_helpers import running_smtp


def message(to: str = "alice@example.com") -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "authserver <no-reply@localhost>"
    mail["To"] = to
    mail["Subject"] = "Hello"
    mail.set_content("Hello Alice")
    return mail


def test_smtp_url_defaults_to_port_25_without_credentials() -> None:
    settings = parse_mail_url("smtp://mail.example.com")
    assert (settings.host, settings.port, settings.implicit_tls) == ("mail.example.com", 25, False)
    assert settings.username is None and settings.password is None


def test_smtps_url_uses_implicit_tls_on_port_465() -> None:
    settings = parse_mail_url("smtps://mail.example.com")
    assert (settings.port, settings.implicit_tls) == (465, True)
    assert parse_mail_url("smtps://mail.example.com:2465").port == 2465


def test_credentials_are_percent_decoded_and_the_password_is_not_in_repr() -> None:
    settings = parse_mail_url("smtp://me%40example.com:p%40ss%3Aw%2Fd%25@mail.example.com:587")
    assert settings.username == "me@example.com"
    assert settings.password == "p@ss:w/d%"
    assert settings.port == 587
    assert "p@ss" not in repr(settings)


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://mail.example.com:99999", "smtp:///x"]
)
def test_unusable_mail_urls_are_refused(url: str) -> None:
    with pytest.raises(MailError):
        parse_mail_url(url)


def test_a_message_is_delivered_over_smtp() -> None:
    with running_smtp() as server:
        deliver_smtp(parse_mail_url(server.url), message())
        received = server.mailbox.wait_for("alice@example.com")
    assert received["Subject"] == "Hello"
    assert received["X-Envelope-To"] == "alice@example.com"


def test_credentials_from_the_url_sign_in_to_the_server() -> None:
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult

        seen.append((data.login, data.password))
        return AuthResult(success=data.password == b"p@ss:word", handled=False)

    # Loopback only: the server offers AUTH without TLS, as a local relay may.
    with running_smtp(authenticator=authenticator, auth_require_tls=False) as server:
        url = f"smtp://me%40example.com:p%40ss%3Aword@127.0.0.1:{server.port}"
        deliver_smtp(parse_mail_url(url), message())
        assert server.mailbox.wait_for("alice@example.com")["Subject"] == "Hello"
        assert seen == [(b"me@example.com", b"p@ss:word")]

        wrong = f"smtp://me%40example.com:wrong-secret@127.0.0.1:{server.port}"
        with pytest.raises(MailError) as refused:
            deliver_smtp(parse_mail_url(wrong), message("bob@example.com"))
    assert "wrong-secret" not in str(refused.value)
    assert server.mailbox.sent_to("bob@example.com") == []


def test_starttls_is_used_when_offered_and_the_certificate_is_verified(tmp_path: Path) -> None:
    """The server offers STARTTLS with a self-signed certificate: the client upgrades,
    refuses the untrusted certificate, and never falls back to clear text."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_certificate(tmp_path))
    with running_smtp(tls_context=context) as server:
        with pytest.raises(MailError, match="SSL"):
            deliver_smtp(parse_mail_url(server.url), message())
        assert server.mailbox.messages == []


def test_an_unreachable_server_raises_mail_error_quickly() -> None:
    with pytest.raises(MailError, match=r"127\.0\.0\.1"):
        deliver_smtp(parse_mail_url(f"smtp://127.0.0.1:{free_port()}"), message())


def test_the_outbox_is_private_to_the_server_user(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    path = write_outbox(outbox, message())
    assert path.parent == outbox and path.suffix == ".eml"
    assert outbox.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600
    assert b"Subject: Hello" in path.read_bytes()


def self_signed_certificate(folder: Path) -> tuple[str, str]:
    """(certificate file, key file) for 127.0.0.1, signed by nobody trusted."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)
