"""Build e-mails from templates/mail/<name>.txt and .html.

Each .txt template sets its subject in `{% block subject %}`; both parts see the
same context plus `product_name`. The text part comes first and the HTML part
last, so mail clients show the richest part they understand (RFC 2046 section 5.1.4).
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from flask import current_app
from jinja2 import Template

from ..extensions import utcnow

# The first http(s) URL of a text body: the link the development log prints.
LINK_RE = re.compile(r"https?://[^\s<>\"']+")


def build_message(template: str, to: str, context: dict[str, Any]) -> EmailMessage:
    """A multipart/alternative message rendered from the `template` pair."""
    config = current_app.config["AUTHSERVER"]
    values = {
        "product_name": config.product_name,
        "accent_color": config.accent_color,
        "issuer": config.issuer,
        **context,
    }
    text_template = current_app.jinja_env.get_template(f"mail/{template}.txt")
    html_template = current_app.jinja_env.get_template(f"mail/{template}.html")
    message = EmailMessage()
    message["Subject"] = render_subject(text_template, values)
    message["From"] = config.mail_from
    message["To"] = to
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=_sender_domain(config.mail_from))
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834 section 5: no auto-replies
    message.set_content(text_template.render(values))
    message.add_alternative(html_template.render(values), subtype="html")
    return message


def render_subject(template: Template, values: dict[str, Any]) -> str:
    """The template's `subject` block on one line (a header cannot hold line breaks)."""
    block = template.blocks.get("subject")
    if block is None:
        raise LookupError(f"{template.name} has no {{% block subject %}}")
    text = "".join(block(template.new_context(values)))
    return " ".join(text.split())


def first_link(message: EmailMessage) -> str | None:
    """The first link in the message's text part, or None."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    match = LINK_RE.search(str(part.get_content()))
    return match.group(0) if match else None


def _sender_domain(mail_from: str) -> str:
    """The domain of the From address, for Message-ID (RFC 5322 section 3.6.4)."""
    match = re.search(r"@([A-Za-z0-9.-]+)", mail_from)
    return match.group(1) if match else "localhost"
