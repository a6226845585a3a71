"""`authserver mail deliver [--follow]` and `authserver mail status`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from authserver.cli import mail as mail_cli
from authserver.extensions import db
from authserver.mail import render_mail, send_mail
from tests.mail_helpers import SmtpServer, running_smtp

CONTEXT = {"name": "", "email": "a@example.com", "link": "http://x/y", "valid_for": "1 day"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def app(app_factory: Any, smtp: SmtpServer) -> Iterator[Flask]:
    app = app_factory(mail_url=smtp.url, mail_sender="external")
    with app.app_context():
        yield app


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def test_deliver_sends_what_is_due_and_says_how_much(app: Flask, smtp: SmtpServer) -> None:
    send_mail("reset_password", "alice@example.com", **CONTEXT)
    render_mail("reset_password", "nobody@example.com", reason="unknown_account", **CONTEXT)
    db.session.commit()
    result = run(app, "mail", "deliver")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["sent: 1", "retrying: 0", "failed: 0"]
    assert len(smtp.mailbox.messages) == 1


def test_deliver_follow_keeps_delivering_until_interrupted(
    app: Flask, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_mail("reset_password", "alice@example.com", **CONTEXT)
    db.session.commit()

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mail_cli.time, "sleep", interrupt)
    result = run(app, "mail", "deliver", "--follow")
    assert result.exit_code == 0, result.output
    smtp.mailbox.wait_for("alice@example.com")


def test_status_counts_each_state(app: Flask) -> None:
    send_mail("reset_password", "alice@example.com", **CONTEXT)
    render_mail("reset_password", "nobody@example.com", reason="unknown_account", **CONTEXT)
    db.session.commit()
    text = run(app, "mail", "status")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[:4] == ["pending: 1", "sent: 0", "failed: 0", "suppressed: 1"]
    assert lines[4].startswith("oldest_pending: 20")

    run(app, "mail", "deliver")
    counts = json.loads(run(app, "mail", "status", "--json").stdout)
    assert counts == {
        "pending": 0,
        "sent": 1,
        "failed": 0,
        "suppressed": 1,
        "oldest_pending": None,
    }
