"""For tests that send mail: a real SMTP server on loopback (aiosmtpd, random free port),
a wait for the outbox to be delivered, and test clients that each keep their own CSRF token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import g
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.browser.mailbox import Mailbox, free_port


@dataclass
class SmtpServer:
    """A running server: its mailbox and the AUTHSERVER_MAIL_URL that reaches it."""

    mailbox: Mailbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


class Sessions:
    """How many SMTP connections are open, to stop the server only between them."""

    def __init__(self) -> None:
        self.open = 0
        self._changed = threading.Condition()

    def opened(self) -> None:
        with self._changed:
            self.open += 1

    def closed(self) -> None:
        with self._changed:
            self.open -= 1
            self._changed.notify_all()

    def wait_until_idle(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self.open == 0, timeout)


@contextmanager
def running_smtp(**options: Any) -> Iterator[SmtpServer]:
    """Run aiosmtpd on 127.0.0.1 for the block; `options` go to its SMTP class.

    Mail is delivered by the server's sender thread, which may still be talking to this
    server when the block ends: the server waits for open conversations to finish
    before it stops (stopping in the middle of one leaves its socket unclosed).
    """
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    sessions = Sessions()

    class CountedSMTP(SMTP):
        def connection_made(self, transport: Any) -> None:
            sessions.opened()
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            try:
                super().connection_lost(error)
            finally:
                sessions.closed()

    class CountingController(Controller):
        def factory(self) -> SMTP:
            return CountedSMTP(self.handler, **self.SMTP_kwargs)

    mailbox = Mailbox()
    port = free_port()
    controller = CountingController(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        sessions.wait_until_idle(timeout=15)
        controller.stop()


class Browser(FlaskClient):
    """A test client for one of several browsers driven by the same test.

    Flask-WTF caches the CSRF token on `g`, which the test's app context shares across
    requests; forgetting it gives each browser a token bound to its own session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def delivered(timeout: float = 10.0) -> None:
    """Wait until the mail outbox holds no pending message: the sender has sent what was queued.

    Mail leaves the request path (authserver.mail), so a test that counts the messages a
    request caused waits for this first. Reads on a connection of its own, so the test's
    session (and anything it has not committed) is left alone.
    """
    from authserver.extensions import db
    from authserver.mail.models import PENDING, MailMessage

    pending = select(func.count()).select_from(MailMessage).where(MailMessage.status == PENDING)
    deadline = time.monotonic() + timeout
    while True:
        with db.engine.connect() as connection:
            left = connection.scalar(pending)
        if not left:
            return
        assert time.monotonic() < deadline, f"{left} message(s) still pending after {timeout} s"
        time.sleep(0.005)
