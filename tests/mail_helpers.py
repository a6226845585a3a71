"""For tests that send mail: a real SMTP server on loopback (aiosmtpd, random free port),
and test clients that each keep their own CSRF token."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import g
from flask.testing import FlaskClient

from tests.browser.mailbox import Mailbox, free_port


@dataclass
class SmtpServer:
    """A running server: its mailbox and the AUTHSERVER_MAIL_URL that reaches it."""

    mailbox: Mailbox
    port: int

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@contextmanager
def running_smtp(**options: Any) -> Iterator[SmtpServer]:
    """Run aiosmtpd on 127.0.0.1 for the block; `options` go to its SMTP class."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(mailbox, port)
    finally:
        controller.stop()


class Browser(FlaskClient):
    """A test client for one of several browsers driven by the same test.

    Flask-WTF caches the CSRF token on `g`, which the test's app context shares across
    requests; forgetting it gives each browser a token bound to its own session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)
