"""Where mail goes: an SMTP server (smtp://, smtps://) or a file outbox for development.

`AUTHSERVER_MAIL_URL` names the server: `smtp://[user:password@]host[:port]` speaks
plain SMTP (port 25) and upgrades with STARTTLS whenever the server offers it
(RFC 3207); `smtps://...` uses implicit TLS from the first byte (RFC 8314 section 3.3,
port 465). Credentials are percent-decoded, so a password may hold any character.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..core.secrets import new_hex_id

log = logging.getLogger("authserver.mail")

# Seconds to wait for the SMTP server before giving up (connect and each command).
SMTP_TIMEOUT = 10.0
DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class MailError(Exception):
    """A message could not be delivered; the message says why, without secrets."""


@dataclass(frozen=True)
class SmtpSettings:
    """An SMTP server parsed from a mail URL."""

    host: str
    port: int
    implicit_tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_mail_url(url: str) -> SmtpSettings:
    """Parse `smtp://` or `smtps://` with optional percent-encoded `user:password@`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise MailError("the mail URL must start with smtp:// or smtps://")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise MailError("the mail URL has an invalid port") from None
    if not parts.hostname:
        raise MailError("the mail URL has no host")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        implicit_tls=scheme == "smtps",
        username=username,
        password=password,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The client TLS context, verifying certificates against the system's CAs.

    Made once per process, on first use: loading the CA bundle takes tens of
    milliseconds, too much to pay for every message.
    """
    return ssl.create_default_context()


def deliver_smtp(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send one message; raises MailError on any failure."""
    try:
        if settings.implicit_tls:
            with smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=SMTP_TIMEOUT, context=tls_context()
            ) as smtp:
                _login_and_send(smtp, settings, message)
        else:
            with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=tls_context())
                    smtp.ehlo()
                elif settings.username is not None and not _is_loopback(settings.host):
                    # Never send credentials across a network in clear text.
                    raise MailError(
                        f"{settings.host} does not offer STARTTLS; refusing to send the "
                        "SMTP password in clear text (use smtps:// or a server with STARTTLS)"
                    )
                _login_and_send(smtp, settings, message)
    except MailError:
        raise
    except (OSError, smtplib.SMTPException) as error:
        # str(error) of smtplib never contains the password; the class name helps triage.
        raise MailError(
            f"SMTP delivery to {settings.host}:{settings.port} failed: "
            f"{type(error).__name__}: {error}"
        ) from None


def _login_and_send(smtp: smtplib.SMTP, settings: SmtpSettings, message: EmailMessage) -> None:
    """Authenticate when the URL has credentials, then hand the message over."""
    if settings.username is not None:
        smtp.login(settings.username, settings.password or "")
    smtp.send_message(message)


def _is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, where nothing crosses a network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def write_outbox(outbox: Path, message: EmailMessage) -> Path:
    """Store the message as an .eml file readable only by the server's user."""
    outbox.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(outbox, 0o700)  # mkdir's mode is reduced by the umask and ignored if it exists
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = outbox / f"{stamp}-{new_hex_id(4)}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(message.as_bytes())
    return path
