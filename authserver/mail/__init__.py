"""Outgoing e-mail: `send_mail(template, to, **context)` queues it, a sender delivers it.

`send_mail` renders the message and stores it in the mail outbox (outbox.py) in the
caller's transaction; nothing talks to a mail server inside a request, so pages that
send mail cost the same whether a mail goes out or not, and a slow or broken mail
server neither slows nor breaks them. The sender (sender.py) delivers the outbox with
retries, from a thread of each serving process or from `authserver mail deliver`.

With `AUTHSERVER_MAIL_URL` set, mail goes to that SMTP server; without it, every
message is written to <instance>/outbox/ as an .eml file and its first link is
logged, so a development server works with no mail set-up at all.
"""

from __future__ import annotations

from . import models as models
from .backends import MailError
from .outbox import RATE_LIMITED, SECURITY_NOTICES, UNPROVEN_RECIPIENT, render_mail, send_mail
from .sender import deliver_due, init_app, nudge, status_counts, stop_sender

__all__ = [
    "RATE_LIMITED",
    "SECURITY_NOTICES",
    "UNPROVEN_RECIPIENT",
    "MailError",
    "deliver_due",
    "init_app",
    "nudge",
    "render_mail",
    "send_mail",
    "status_counts",
    "stop_sender",
]
