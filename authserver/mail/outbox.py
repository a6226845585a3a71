"""The transactional outbox: a message is stored in the transaction of the change that caused it.

`send_mail` renders the message and adds a `MailMessage` row (status "pending") to the
current database session without committing: the caller's commit stores the message
together with the token, account or invitation it is about, and a rollback drops both.
Nothing talks to a mail server inside a request; the sender (sender.py) delivers.

`render_mail` does the same work but stores the row as "suppressed": a request about an
unknown address renders, counts and inserts exactly like one about a known address, so
neither its time nor its database work tells them apart.
"""

from __future__ import annotations

import logging
from typing import Any

from ..extensions import db, precise_utcnow, utcnow
from .limits import over_limit
from .messages import build_message
from .models import PENDING, SUPPRESSED, MailMessage

log = logging.getLogger("authserver.mail")

# Notices to an account's own address about its own security. They are never
# suppressed by the send limits: each follows an action that is limited itself.
SECURITY_NOTICES = frozenset({"password_changed", "email_change_requested", "account_locked"})
# Mails to an address not yet proven to be the person's own. Their templates must not
# show text the requester chose (such as a display name): the mail would carry a
# stranger's words to any inbox (tests/unit/mail/test_outbox.py checks the templates).
UNPROVEN_RECIPIENT = frozenset(
    {"verify_email", "verify_new_email", "email_in_use", "signup_existing"}
)
RATE_LIMITED = "rate_limited"
# db.session.info key: this transaction added outbox rows (read by sender.after_commit).
QUEUED = "authserver.mail.queued"
_MAX_REASON = 255


def send_mail(template: str, to: str, *, account: str | None = None, **context: Any) -> MailMessage:
    """Queue templates/mail/<template>.txt/.html for `to`; the caller's commit stores it.

    `account` names the account the mail is about (or the person causing it) for the
    per-account send limit; without it the recipient stands in. Over a send limit the
    row is stored as suppressed (reason "rate_limited") and a warning is logged.
    """
    return _queue(template, to, context, account, suppressed_because=None)


def render_mail(
    template: str, to: str, *, reason: str, account: str | None = None, **context: Any
) -> MailMessage:
    """Do everything `send_mail` does, but store the message as suppressed, never to be sent.

    Used where a request must cost the same whether or not a mail goes out; `reason`
    (a word or two, never a secret) is kept for `authserver mail status`. The caller
    makes sure no link in it works (no token was stored for it); `authserver cleanup`
    removes the row after `mail_retention_days`.
    """
    return _queue(template, to, context, account, suppressed_because=reason)


def _queue(
    template: str,
    to: str,
    context: dict[str, Any],
    account: str | None,
    suppressed_because: str | None,
) -> MailMessage:
    """Render, count against the send limits, and add one outbox row (not committed)."""
    message = build_message(template, to, context)
    body = message.as_bytes()
    over = None if template in SECURITY_NOTICES else over_limit(to, account or to)
    if over is not None:
        # Logged for messages that were never to be sent too: the same work either way.
        log.warning("%s send limit reached: %r to %s is not sent", over, template, to)
    reason = suppressed_because or (RATE_LIMITED if over is not None else None)
    row = MailMessage(
        template=template,
        recipient=to,
        subject=str(message["Subject"])[:255],
        # Over a send limit the body goes: its link may be live, and it is never sent. A
        # message that was never to be sent (render_mail) keeps it, so that storing it
        # costs what storing a real one does; its link leads nowhere.
        message=None if over is not None else body,
        status=SUPPRESSED if reason else PENDING,
        reason=reason[:_MAX_REASON] if reason else None,
        attempts=0,
        next_attempt_at=precise_utcnow(),
        created_at=utcnow(),
    )
    db.session.add(row)
    db.session.info[QUEUED] = True
    return row
