"""No page is a mail cannon: sends are limited per account, per recipient and per IP, the
page answers the same over a limit, and mail to unproven addresses carries no text the
requester chose. (The review sent 60 mails in 2.5 s through POST /account/email.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from authserver.accounts.models import AccountToken
from authserver.extensions import db, utcnow
from authserver.mail.models import MailMessage
from tests.browser.mailbox import html_part, text_part
from tests.factories import PASSWORD, make_user
from tests.mail_helpers import Browser, SmtpServer, delivered, running_smtp
from tests.oauth_helpers import csrf_token, sign_in

SPAM = "Cheap pills at spam.example"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


def make_app(app_factory: Any, smtp: SmtpServer, **settings: Any) -> Flask:
    app: Flask = app_factory(mail_url=smtp.url, **settings)
    app.test_client_class = Browser
    return app


def change_email(browser: FlaskClient, address: str) -> Any:
    page = browser.get("/account")
    return browser.post(
        "/account/email",
        data={
            "csrf_token": csrf_token(page.text),
            "email": address,
            "email_password": PASSWORD,
        },
    )


def suppressed() -> int:
    return int(
        db.session.scalar(
            select(func.count(MailMessage.id)).where(MailMessage.reason == "rate_limited")
        )
        or 0
    )


def test_the_account_page_sends_at_most_the_account_limit(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = make_app(app_factory, smtp, ratelimit_pages="1000/minute", mail_limit_account="5/hour")
    with app.app_context():
        make_user(name=SPAM)
        browser = app.test_client()
        sign_in(browser)
        answers = []
        for n in range(12):
            response = change_email(browser, f"target-{n}@example.com")
            answers.append((response.status_code, response.headers.get("Location")))
        assert set(answers) == {(302, "/account")}, "the same answer over the limit"
        delivered()
        to_targets = [m for m in smtp.mailbox.messages if "target-" in m["X-Envelope-To"]]
        assert len(to_targets) == 5
        assert suppressed() == 7
        for message in to_targets:
            assert SPAM not in text_part(message) and SPAM not in html_part(message)
        # The owner is told of every request: a security notice is never limited.
        assert len(smtp.mailbox.sent_to("alice@example.com")) == 12


def test_the_account_page_is_limited_per_ip_before_any_mail(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = make_app(app_factory, smtp, ratelimit_pages="10/minute")
    with app.app_context():
        make_user()
        browser = app.test_client()
        sign_in(browser)
        statuses = [change_email(browser, f"t{n}@example.com").status_code for n in range(12)]
        assert statuses == [302] * 10 + [429] * 2


def test_forgot_password_mails_one_address_at_most_the_recipient_limit(
    app_factory: Any, smtp: SmtpServer
) -> None:
    app = make_app(app_factory, smtp, ratelimit_pages="1000/minute", mail_limit_recipient="3/hour")
    with app.app_context():
        make_user()
        browser = app.test_client()
        texts = []
        for _ in range(6):
            page = browser.get("/password/forgot")
            response = browser.post(
                "/password/forgot",
                data={"email": "alice@example.com", "csrf_token": csrf_token(page.text)},
            )
            texts.append((response.status_code, response.text))
            # Past the one-link-a-minute guard, so only the send limit stops the mail.
            db.session.execute(
                update(AccountToken).values(created_at=utcnow() - timedelta(minutes=2))
            )
            db.session.commit()
        assert len(set(texts)) == 1, "the same page whether or not the mail went"
        delivered()
        assert len(smtp.mailbox.sent_to("alice@example.com")) == 3
        assert suppressed() == 3
