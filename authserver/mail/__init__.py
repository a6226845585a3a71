"""Outgoing e-mail: `send_mail(template, to, **context)` and its backends.

With `AUTHSERVER_MAIL_URL` set, mail goes to that SMTP server; without it, every
message is written to <instance>/outbox/ as an .eml file and its first link is
logged, so a development server works with no mail set-up at all.

A delivery failure is logged and reported by the return value, never raised: pages
that send mail answer the same whether it went out or not, so a broken mail server
neither breaks the page nor tells a visitor whether an account exists.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import current_app

from . import models as models
from .backends import MailError, deliver_smtp, parse_mail_url, write_outbox
from .messages import build_message, first_link

__all__ = ["MailError", "render_mail", "send_mail"]

log = logging.getLogger("authserver.mail")


def send_mail(template: str, to: str, **context: Any) -> bool:
    """Render templates/mail/<template>.txt/.html and deliver it to `to`; True when sent."""
    message = build_message(template, to, context)
    config = current_app.config["AUTHSERVER"]
    try:
        if config.mail_url:
            deliver_smtp(parse_mail_url(config.mail_url), message)
            log.info("sent %r to %s", message["Subject"], to)
        else:
            _to_outbox(Path(config.instance_path) / "outbox", message, to)
    except (MailError, OSError) as error:
        log.error("could not send %r to %s: %s", message["Subject"], to, error)
        return False
    return True


def render_mail(template: str, to: str, **context: Any) -> None:
    """Render a message without sending it: the same work as `send_mail` up to delivery.

    Used where a request must cost the same whether or not a mail goes out.
    """
    build_message(template, to, context)


def _to_outbox(outbox: Path, message: EmailMessage, to: str) -> None:
    """Development delivery: an .eml file, and the link in the log (not in production)."""
    path = write_outbox(outbox, message)
    if current_app.config["AUTHSERVER"].is_production:
        log.info("wrote %r to %s in %s", message["Subject"], to, path)
        return
    _show_info_lines()
    log.info("mail to %s: %s: %s", to, message["Subject"], first_link(message) or "(no link)")


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
