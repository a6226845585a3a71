"""The outbox: a message is stored by the caller's commit, counted against the send limits,
and never carries a stranger's words to an unproven address."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from authserver.extensions import db
from authserver.mail import (
    RATE_LIMITED,
    SECURITY_NOTICES,
    UNPROVEN_RECIPIENT,
    deliver_due,
    render_mail,
    send_mail,
)
from authserver.mail.messages import build_message
from authserver.mail.models import MailMessage
from tests.browser.mailbox import html_part, text_part

LINK = "http://127.0.0.1:5000/some/link"
CONTEXT = {
    "email": "a@example.com",
    "new_email": "b@example.com",
    "link": LINK,
    "reset_link": LINK,
    "valid_for": "1 day",
    "minutes": 15,
}


def rows() -> list[MailMessage]:
    return list(db.session.scalars(select(MailMessage).order_by(MailMessage.id)))


@pytest.fixture
def app(app_factory: Any) -> Any:
    app = app_factory(
        mail_sender="external",
        mail_limit_recipient="2/hour",
        mail_limit_account="3/hour",
        mail_limit_ip="4/hour",
    )
    with app.app_context():
        yield app


def test_a_message_is_stored_by_the_callers_commit_and_dropped_by_its_rollback(app: Flask) -> None:
    send_mail("reset_password", "alice@example.com", name="", **CONTEXT)
    db.session.rollback()
    assert rows() == []
    assert deliver_due().sent == 0

    send_mail("reset_password", "alice@example.com", name="", **CONTEXT)
    assert deliver_due().sent == 0, "nothing is sent before the commit"
    db.session.commit()
    [row] = rows()
    assert (row.status, row.recipient, row.attempts) == ("pending", "alice@example.com", 0)
    assert row.subject == "Reset your authserver password" and row.message


def test_over_the_per_recipient_limit_a_message_is_suppressed_and_logged(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    sent = [
        send_mail("reset_password", "alice@example.com", account=f"acct-{n}", name="", **CONTEXT)
        for n in range(3)
    ]
    db.session.commit()
    assert [row.status for row in sent] == ["pending", "pending", "suppressed"]
    assert sent[2].reason == RATE_LIMITED and sent[2].message is None  # its link may be live
    assert "recipient send limit reached" in caplog.text


def test_the_per_account_limit_counts_across_recipients(app: Flask) -> None:
    sent = [
        send_mail("verify_new_email", f"new-{n}@example.com", account="alice", **CONTEXT)
        for n in range(4)
    ]
    assert [row.status for row in sent] == ["pending"] * 3 + ["suppressed"]


def test_the_per_ip_limit_counts_every_account_and_recipient(app: Flask) -> None:
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        sent = [
            send_mail("verify_email", f"x{n}@example.com", account=f"a{n}", **CONTEXT)
            for n in range(5)
        ]
    assert [row.status for row in sent] == ["pending"] * 4 + ["suppressed"]
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "198.51.100.1"}):
        assert send_mail("verify_email", "y@example.com", account="b", **CONTEXT).status == (
            "pending"
        )


@pytest.mark.parametrize("template", sorted(SECURITY_NOTICES))
def test_security_notices_to_the_accounts_own_address_are_never_limited(
    app: Flask, template: str
) -> None:
    sent = [
        send_mail(template, "alice@example.com", account="alice", name="", **CONTEXT)
        for _ in range(6)
    ]
    assert {row.status for row in sent} == {"pending"}


def test_render_mail_counts_like_send_mail_and_stores_a_row_never_sent(app: Flask) -> None:
    first = render_mail("reset_password", "nobody@example.com", reason="unknown_account", **CONTEXT)
    render_mail("reset_password", "nobody@example.com", reason="unknown_account", **CONTEXT)
    db.session.commit()
    assert (first.status, first.reason) == ("suppressed", "unknown_account")
    assert first.message is not None, "stored like a real message, so both cost the same"
    # Both counted against the recipient's limit: a real message now would be over it.
    assert send_mail("reset_password", "nobody@example.com", name="", **CONTEXT).status == (
        "suppressed"
    )
    assert deliver_due().sent == 0


def test_with_rate_limits_off_nothing_is_suppressed(app_factory: Any) -> None:
    app = app_factory(
        mail_sender="external", ratelimit_enabled=False, mail_limit_recipient="1/hour"
    )
    with app.app_context():
        sent = [send_mail("verify_email", "a@example.com", **CONTEXT) for _ in range(3)]
        assert {row.status for row in sent} == {"pending"}


@pytest.mark.parametrize("template", sorted(UNPROVEN_RECIPIENT))
def test_mail_to_an_unproven_address_never_shows_a_name(app: Flask, template: str) -> None:
    """The display name is the requester's text; these mails reach addresses nobody proved."""
    words = "Call +1 555 0100 to claim your prize"
    message = build_message(template, "victim@example.com", {**CONTEXT, "name": words})
    assert words not in text_part(message) and words not in html_part(message)
    assert words not in str(message["Subject"])


def test_the_outbox_holds_one_row_per_message(app: Flask) -> None:
    for n in range(2):
        send_mail("verify_email", f"a{n}@example.com", **CONTEXT)
    db.session.commit()
    assert db.session.scalar(select(func.count(MailMessage.id))) == 2


def test_the_send_limit_warning_names_no_secret(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="authserver.mail")
    for _ in range(3):
        send_mail("reset_password", "alice@example.com", name="", **CONTEXT)
    assert LINK not in caplog.text
