"""send_mail: templates to a multipart message, queued in the outbox and delivered by the
sender over SMTP or to the file outbox."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.extensions import db
from authserver.mail import deliver_due, render_mail, send_mail
from authserver.mail.models import MailMessage
from tests.browser.mailbox import free_port, html_part, text_part
from tests.mail_helpers import SmtpServer, delivered, running_smtp

# deliver_due reads the outbox in a session of its own: what a test queued must be committed.
pytestmark = pytest.mark.commits

LINK = "http://127.0.0.1:5000/password/reset/abc-123"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def reset_context() -> dict[str, Any]:
    return {"name": "Alice", "email": "alice@example.com", "link": LINK, "valid_for": "30 minutes"}


def test_the_message_has_a_text_and_an_html_part_from_the_templates(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = app_factory(
        mail_url=smtp.url, product_name="Wonderland ID", mail_from="Wonderland <id@example.org>"
    )
    with app.app_context():
        assert send_mail("reset_password", "alice@example.com", **reset_context()).status == (
            "pending"
        )
        db.session.commit()  # the commit stores the message and wakes the sender
        mail = smtp.mailbox.wait_for("alice@example.com")
    assert mail["Subject"] == "Reset your Wonderland ID password"
    assert mail["From"] == "Wonderland <id@example.org>"
    assert mail["To"] == "alice@example.com"
    assert mail["Message-ID"].endswith("@example.org>")
    assert mail.get_content_type() == "multipart/alternative"
    assert LINK in text_part(mail) and "Wonderland ID" in text_part(mail)
    assert f'href="{LINK}"' in html_part(mail)


def test_the_html_part_escapes_what_the_text_part_keeps(app_factory: Any, smtp: SmtpServer) -> None:
    app = app_factory(mail_url=smtp.url)
    with app.app_context():
        send_mail("reset_password", "alice@example.com", **{**reset_context(), "name": "<b>Al"})
        db.session.commit()
        mail = smtp.mailbox.wait_for("alice@example.com")
    assert "Hello <b>Al," in text_part(mail)
    assert "&lt;b&gt;Al" in html_part(mail) and "<b>Al" not in html_part(mail)


def test_without_a_mail_url_the_message_goes_to_the_outbox_and_its_link_to_the_log(
    app_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(mail_url="", instance_path=str(tmp_path), mail_sender="external")
    caplog.set_level(logging.INFO, logger="authserver.mail")
    with app.app_context():
        send_mail("reset_password", "alice@example.com", **reset_context())
        db.session.commit()
        assert deliver_due().sent == 1
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    assert (tmp_path / "outbox").stat().st_mode & 0o777 == 0o700
    stored = message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert isinstance(stored, EmailMessage)
    assert LINK in text_part(stored)
    [record] = [r for r in caplog.records if r.name == "authserver.mail"]
    assert record.levelno == logging.INFO
    line = record.getMessage()
    assert "alice@example.com" in line and "Reset your authserver password" in line
    assert LINK in line


def test_a_delivery_failure_is_logged_not_raised_and_hides_the_password(
    app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_factory(
        mail_url=f"smtp://mailer:s3cret-pass@127.0.0.1:{free_port()}", mail_sender="external"
    )
    with app.app_context():
        send_mail("reset_password", "alice@example.com", **reset_context())
        db.session.commit()
        assert deliver_due().retrying == 1
        row = db.session.scalar(select(MailMessage))
        assert row is not None and row.status == "pending" and row.attempts == 1
        assert "s3cret-pass" not in (row.reason or "")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors and "alice@example.com" in errors[0].getMessage()
    assert "s3cret-pass" not in caplog.text


def test_render_mail_does_the_rendering_but_sends_nothing(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app: Flask = app_factory(mail_url=smtp.url)
    with app.app_context():
        row = render_mail("reset_password", "alice@example.com", reason="test", **reset_context())
        send_mail("password_changed", "bob@example.com", name="Bob", email="b", link=LINK)
        db.session.commit()
        smtp.mailbox.wait_for("bob@example.com")
        delivered()
        assert (row.status, row.reason) == ("suppressed", "test")
        assert row.subject == "Reset your authserver password"
        assert row.message is not None  # stored like a real one, so both cost the same
    assert smtp.mailbox.sent_to("alice@example.com") == []


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("verify_email", {"email": "a@x", "link": LINK, "valid_for": "1 day"}),
        ("verify_new_email", {"email": "a@x", "link": LINK, "valid_for": "1 day"}),
        ("email_change_requested", {"name": "A", "email": "a@x", "new_email": "b@x", "link": LINK}),
        ("email_in_use", {"email": "a@x", "link": LINK}),
        ("signup_existing", {"email": "a@x", "link": LINK, "reset_link": LINK}),
        ("reset_password", {"name": "A", "email": "a@x", "link": LINK, "valid_for": "30 minutes"}),
        ("password_changed", {"name": "A", "email": "a@x", "link": LINK}),
    ],
)
def test_every_mail_template_has_a_subject_and_its_link_in_both_parts(
    app_factory: Any, tmp_path: Path, template: str, context: dict[str, Any]
) -> None:
    app = app_factory(instance_path=str(tmp_path), mail_sender="external")
    with app.app_context():
        send_mail(template, "a@example.com", **context)
        db.session.commit()
        assert deliver_due().sent == 1
    [file] = (tmp_path / "outbox").glob("*.eml")
    mail = message_from_bytes(file.read_bytes(), policy=default_policy)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] and "\n" not in mail["Subject"]
    assert LINK in text_part(mail) and LINK in html_part(mail)
