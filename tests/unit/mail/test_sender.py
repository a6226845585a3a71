"""The sender: claims due messages so no two senders send one twice, retries with backoff,
gives up after MAX_ATTEMPTS, empties what it sent, and runs as a thread that never raises
and stops with its app."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from authserver.extensions import db, precise_utcnow
from authserver.mail import deliver_due, send_mail, sender, stop_sender
from authserver.mail.models import MailMessage
from tests.browser.mailbox import free_port
from tests.mail_helpers import SmtpServer, delivered, running_smtp

# The sender reads the outbox in a session of its own: what a test queued must be committed.
pytestmark = pytest.mark.commits

CONTEXT = {"name": "", "email": "a@example.com", "link": "http://x/y", "valid_for": "1 day"}


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def queue(count: int = 1, to: str = "alice@example.com") -> None:
    for n in range(count):
        send_mail("reset_password", to.replace("@", f"+{n}@") if count > 1 else to, **CONTEXT)
    db.session.commit()


def only_row() -> MailMessage:
    db.session.expire_all()
    [row] = db.session.scalars(select(MailMessage)).all()
    return row


def test_a_sent_message_is_marked_sent_and_its_body_emptied(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = app_factory(mail_url=smtp.url, mail_sender="external")
    with app.app_context():
        queue()
        assert deliver_due().sent == 1
        row = only_row()
        assert (row.status, row.attempts, row.message, row.locked_until) == ("sent", 1, None, None)
        assert row.sent_at is not None
        assert deliver_due().sent == 0, "a sent message is not sent again"
    assert len(smtp.mailbox.sent_to("alice@example.com")) == 1


def test_retries_wait_longer_each_time_then_give_up(app_factory: Any) -> None:
    assert [sender.retry_delay(n).total_seconds() for n in range(1, 8)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1800,
    ]
    app = app_factory(mail_url=f"smtp://127.0.0.1:{free_port()}", mail_sender="external")
    with app.app_context():
        queue()
        started = precise_utcnow()
        assert deliver_due().retrying == 1
        row = only_row()
        assert (row.status, row.attempts) == ("pending", 1)
        assert row.next_attempt_at - started >= timedelta(seconds=29)
        assert "Connection refused" in (row.reason or "")
        assert deliver_due().retrying == 0, "not due yet"

        db.session.execute(
            update(MailMessage).values(
                attempts=sender.MAX_ATTEMPTS - 1, next_attempt_at=precise_utcnow()
            )
        )
        db.session.commit()
        assert deliver_due().failed == 1
        row = only_row()
        assert (row.status, row.attempts, row.message) == ("failed", sender.MAX_ATTEMPTS, None)


def test_a_claimed_message_is_left_to_its_sender_until_the_claim_runs_out(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = app_factory(mail_url=smtp.url, mail_sender="external")
    with app.app_context():
        queue()
        held = precise_utcnow() + timedelta(minutes=1)
        db.session.execute(update(MailMessage).values(locked_until=held))
        db.session.commit()
        assert deliver_due().sent == 0
        db.session.execute(update(MailMessage).values(locked_until=precise_utcnow()))
        db.session.commit()
        assert deliver_due().sent == 1  # a sender that died lets go when its lease ends
    assert len(smtp.mailbox.sent_to("alice@example.com")) == 1


def test_two_senders_at_once_send_each_message_once(app_factory: Any, smtp: SmtpServer) -> None:
    apps: list[Flask] = [app_factory(mail_url=smtp.url, mail_sender="external") for _ in range(2)]
    with apps[0].app_context():
        queue(40)
    start = threading.Barrier(len(apps))
    errors: list[BaseException] = []

    def run(app: Flask) -> None:
        try:
            with app.app_context():
                start.wait(timeout=10)
                deliver_due()
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    ids = Counter(str(message["Message-ID"]) for message in smtp.mailbox.messages)
    assert len(ids) == 40 and max(ids.values()) == 1
    with apps[0].app_context():
        statuses = set(db.session.scalars(select(MailMessage.status)))
    assert statuses == {"sent"}


def test_the_thread_delivers_after_a_commit_and_stops_with_its_app(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = app_factory(mail_url=smtp.url)
    with app.app_context():
        queue()  # outside a request the commit wakes the thread at once
        smtp.mailbox.wait_for("alice@example.com")
        delivered()
    thread = app.extensions[sender.EXTENSION]._thread
    assert thread is not None and thread.is_alive() and thread.daemon
    stop_sender(app)
    assert not thread.is_alive()
    with app.app_context():
        queue(to="bob@example.com")  # a closed sender starts no new thread
        time.sleep(0.2)
        assert only_pending() == 1


def only_pending() -> int:
    return len(db.session.scalars(select(MailMessage).where(MailMessage.status == "pending")).all())


def test_external_mode_leaves_delivery_to_the_cli(app_factory: Any, smtp: SmtpServer) -> None:
    app = app_factory(mail_url=smtp.url, mail_sender="external")
    with app.app_context():
        queue()
        app.test_client().get("/")  # no thread starts with the first request either
        time.sleep(0.3)
        assert only_row().status == "pending"
        assert app.extensions[sender.EXTENSION]._thread is None


def test_the_thread_never_raises_and_tries_again(
    app_factory: Any,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = sender.deliver_due
    calls: list[int] = []

    def flaky(halt: Any = None) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        return real(halt)

    monkeypatch.setattr(sender, "deliver_due", flaky)
    app = app_factory(mail_url=smtp.url)
    with app.app_context():
        queue()
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        queue(to="bob@example.com")  # the next nudge finds the thread alive and delivers both
        smtp.mailbox.wait_for("bob@example.com")
        smtp.mailbox.wait_for("alice@example.com")
    assert "the mail sender failed" in caplog.text
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_disposing_the_engine_stops_the_thread(app_factory: Any, smtp: SmtpServer) -> None:
    app = app_factory(mail_url=smtp.url)
    with app.app_context():
        queue()
        smtp.mailbox.wait_for("alice@example.com")
        thread = app.extensions[sender.EXTENSION]._thread
        assert thread is not None and thread.is_alive()
        # The thread may still hold a connection (marking the message sent): dispose()
        # leaves it checked out, and it goes back to the pool being replaced.
        replaced = db.engine.pool
        db.engine.dispose()
    thread.join(timeout=10)
    assert not thread.is_alive()
    replaced.dispose()  # closes that connection, which would otherwise be left to the GC
