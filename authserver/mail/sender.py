"""The sender: delivers the outbox with retries, from a thread of each serving process or the CLI.

Several processes and instances may run it at once and never send one message twice:
a sender *claims* due messages with one conditional UPDATE (pending, due, and not held
by another sender's unexpired claim; on PostgreSQL the candidate rows are read with
SELECT ... FOR UPDATE SKIP LOCKED, so two senders do not even wait for each other),
delivers them with no transaction open, and marks each one sent (emptying its body,
which may hold a single-use link) or schedules a retry with exponential backoff; after
MAX_ATTEMPTS it is marked failed. A claim runs out after LEASE, so the messages of a
sender that died are picked up by another. Delivery is at least once: a sender killed
between handing a message over and marking it sent sends it again after the lease.

The claims, the backoff and the thread are core/outbox.py's, shared with the
back-channel logout outbox (oidc/backchannel.py).

With `AUTHSERVER_MAIL_SENDER=thread` (the default) every serving process runs a daemon
thread, started on its first request or first queued message, woken when a request that
queued mail ends (right after the commit outside requests) and every POLL_SECONDS for
retries; `authserver mail deliver --follow` does the same as a separate service
(`AUTHSERVER_MAIL_SENDER=external`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from ..core import outbox
from ..extensions import db, precise_utcnow, utcnow
from .backends import MailError, deliver_smtp, parse_mail_url, write_outbox
from .messages import first_link
from .models import FAILED, PENDING, SENT, MailMessage
from .outbox import QUEUED

log = logging.getLogger("authserver.mail")

EXTENSION = "authserver_mail_sender"
# flask.g key: a commit in this request queued mail; the sender is woken when it ends.
NUDGE_AFTER_REQUEST = "authserver_mail_nudge"
# Seconds between looks at the outbox when nobody nudges (retries, other processes' mail).
POLL_SECONDS = 5.0
BATCH_SIZE = 10
# How long a claim holds a message: well beyond BATCH_SIZE deliveries at SMTP_TIMEOUT.
LEASE = timedelta(minutes=5)
# Retries wait 30 s, 1, 2, 4, 8, 16 then 30 minutes: a message undeliverable for about an
# hour is marked failed (its link would have expired by then anyway).
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(minutes=30)
_MAX_REASON = 255


@dataclass
class Delivery:
    """What one run of the sender did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from FIRST_RETRY, capped."""
    return outbox.retry_delay(attempts, FIRST_RETRY, MAX_RETRY)


def deliver_due(halt: threading.Event | None = None) -> Delivery:
    """Deliver every message due now, batch by batch, until none is left or `halt` is set.

    Runs in a database session of its own, so it never flushes or commits the caller's
    unit of work. A message that cannot be delivered is rescheduled or marked failed;
    only the database being unreachable makes this raise.
    """
    done = Delivery()
    with Session(db.engine) as session:
        while halt is None or not halt.is_set():
            claimed, lease = claim(session, BATCH_SIZE)
            if not claimed:
                break
            for message_id in claimed:
                outcome = deliver_one(session, message_id, lease)
                if outcome == SENT:
                    done.sent += 1
                elif outcome == FAILED:
                    done.failed += 1
                elif outcome == PENDING:
                    done.retrying += 1
    return done


def claim(session: Session, limit: int) -> tuple[list[int], Any]:
    """Take up to `limit` due messages for LEASE; (their ids, the lease that marks them ours)."""
    return outbox.claim(session, MailMessage, limit, LEASE)


def deliver_one(session: Session, message_id: int, lease: Any) -> str:
    """Hand one claimed message to the mail server; its new status."""
    row = session.get(MailMessage, message_id)
    if row is None:
        session.rollback()
        return FAILED
    body, recipient, subject, attempts = row.message, row.recipient, row.subject, row.attempts
    session.rollback()  # no transaction stays open while a mail server is talked to
    if body is None:
        return _finish(session, message_id, lease, attempts, "the message has no body")
    try:
        message = message_from_bytes(body, policy=default_policy)
        assert isinstance(message, EmailMessage)
        _transport(message, recipient, subject)
    except (MailError, OSError) as error:
        log.error("could not send %r to %s (attempt %d): %s", subject, recipient, attempts, error)
        return _finish(session, message_id, lease, attempts, str(error))
    except Exception as error:  # one broken message must not stop the others
        log.exception("could not send %r to %s (attempt %d)", subject, recipient, attempts)
        return _finish(session, message_id, lease, attempts, type(error).__name__)
    return _finish(session, message_id, lease, attempts, None)


def _finish(session: Session, message_id: int, lease: Any, attempts: int, error: str | None) -> str:
    """Mark the message sent, rescheduled or failed, if our claim still holds it; commits."""
    values: dict[str, Any]
    if error is None:
        status, values = SENT, {"sent_at": utcnow(), "message": None, "reason": None}
    elif attempts >= MAX_ATTEMPTS:
        status, values = FAILED, {"message": None, "reason": error[:_MAX_REASON]}
        log.error("gave up on outbox message %d after %d attempts", message_id, attempts)
    else:
        retry_at = precise_utcnow() + retry_delay(attempts)
        status, values = PENDING, {"next_attempt_at": retry_at, "reason": error[:_MAX_REASON]}
    outbox.finish(session, MailMessage, message_id, lease, status, values)
    return status


def _transport(message: EmailMessage, recipient: str, subject: str) -> None:
    """SMTP when AUTHSERVER_MAIL_URL is set, else the development file outbox."""
    config = current_app.config["AUTHSERVER"]
    if config.mail_url:
        deliver_smtp(parse_mail_url(config.mail_url), message)
        log.info("sent %r to %s", subject, recipient)
        return
    path = write_outbox(Path(config.instance_path) / "outbox", message)
    if config.is_production:
        log.info("wrote %r to %s in %s", subject, recipient, path)
        return
    _show_info_lines()
    log.info("mail to %s: %s: %s", recipient, subject, first_link(message) or "(no link)")


def _show_info_lines() -> None:
    """Development: the outbox line must reach the console even when nobody set up logging.

    Without any configuration Python drops INFO records (and gunicorn configures only its
    own loggers), so the link of `make run` would be lost.
    """
    if log.isEnabledFor(logging.INFO):
        return
    log.setLevel(logging.INFO)
    if not log.hasHandlers():
        log.addHandler(logging.StreamHandler())


def status_counts() -> dict[str, Any]:
    """Messages per status, and when the oldest pending one was queued (for `mail status`)."""
    rows = db.session.execute(
        select(MailMessage.status, func.count(MailMessage.id)).group_by(MailMessage.status)
    ).all()
    counts: dict[str, Any] = {"pending": 0, "sent": 0, "failed": 0, "suppressed": 0}
    counts.update({str(status): int(count) for status, count in rows})
    oldest = db.session.scalar(
        select(func.min(MailMessage.created_at)).where(MailMessage.status == PENDING)
    )
    counts["oldest_pending"] = oldest.isoformat() if oldest is not None else None
    return counts


# The thread of a serving process


class Sender(outbox.Worker):
    """One app's delivery thread (core.outbox.Worker running `deliver_due`)."""

    def __init__(self, app: Flask) -> None:
        super().__init__(
            app,
            # Looked up at each run, not bound once: tests replace deliver_due.
            lambda halt: deliver_due(halt),
            name="authserver-mail-sender",
            label="mail sender",
            poll_seconds=POLL_SECONDS,
            log=log,
        )


def init_app(app: Flask) -> None:
    """Give `app` its sender; in thread mode start it with the first request."""
    sender = Sender(app)
    app.extensions[EXTENSION] = sender
    if app.config["AUTHSERVER"].mail_sender == "thread":
        app.before_request(sender.ensure_started)
        app.teardown_request(_nudge_after_request)
    with app.app_context():
        event.listen(db.engine, "engine_disposed", lambda _engine: sender.halt())
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)


def stop_sender(app: Flask, timeout: float = 10.0) -> None:
    """Stop the app's sender thread for good (when the app is being thrown away)."""
    sender = app.extensions.get(EXTENSION)
    if isinstance(sender, Sender):
        sender.close(timeout)


def nudge() -> None:
    """Wake the current app's sender thread (thread mode only); in a request, when it ends.

    Waking it at once would have it deliver (and hold the GIL) while the request that
    queued the mail still renders its page: that page would take longer exactly when a
    mail goes out, which is what the outbox is there to hide.
    """
    if not has_app_context():
        return
    sender = current_app.extensions.get(EXTENSION)
    if not isinstance(sender, Sender) or current_app.config["AUTHSERVER"].mail_sender != "thread":
        return
    if has_request_context():
        g.setdefault(NUDGE_AFTER_REQUEST, True)
    else:
        sender.nudge()


def _nudge_after_request(_error: BaseException | None) -> None:
    """teardown_request: the response is complete; wake the sender if mail was committed."""
    if g.pop(NUDGE_AFTER_REQUEST, False):
        sender = current_app.extensions.get(EXTENSION)
        if isinstance(sender, Sender):
            sender.nudge()


def _after_commit(session: Session) -> None:
    """A commit that stored outbox rows wakes the sender (SQLAlchemy session event)."""
    if session.info.pop(QUEUED, False):
        nudge()
