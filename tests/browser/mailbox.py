"""A real SMTP server on loopback (aiosmtpd) that keeps what the server sends."""

from __future__ import annotations

import email
import re
import socket
import threading
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

LINK_RE = re.compile(r"https?://[^\s<>\"']+")


def free_port() -> int:
    """A port nobody listens on right now (aiosmtpd's controller needs a real number)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox:
    """aiosmtpd handler: every delivered message, parsed, in arrival order."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """aiosmtpd hook: keep the message, accept it."""
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()

    def wait_for(self, to: str, timeout: float = 10.0) -> EmailMessage:
        """The first message for `to`, waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for message in self.messages:
                    if to.lower() in message["X-Envelope-To"].lower():
                        return message
                left = deadline - time.monotonic()
                assert left > 0, f"no mail for {to} within {timeout} s"
                self._arrived.wait(left)

    def sent_to(self, to: str) -> list[EmailMessage]:
        with self._arrived:
            return [m for m in self.messages if to.lower() in m["X-Envelope-To"].lower()]


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the mail has no text/plain part"
    return str(part.get_content())


def html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the mail has no text/html part"
    return str(part.get_content())


def link_in(message: EmailMessage, path_part: str) -> str:
    """The link in the mail's text part whose URL contains `path_part`."""
    for link in LINK_RE.findall(text_part(message)):
        if path_part in link:
            return str(link.rstrip(".,)"))
    raise AssertionError(f"no link with {path_part!r} in:\n{text_part(message)}")
