"""E-mail verification: the mailed link confirms the address only after a button press
(scanners that prefetch links use GET), once, before it expires; e-mail changes wait for
the new address to be confirmed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from authserver.accounts.email_change import request_email_change, send_verification_email
from authserver.accounts.models import AccountToken, User
from authserver.extensions import db, utcnow
from tests.browser.mailbox import link_in, text_part
from tests.factories import make_user
from tests.mail_helpers import Browser, SmtpServer, delivered, running_smtp
from tests.oauth_helpers import csrf_token, sign_in


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def app(app_factory: Any, smtp: SmtpServer) -> Iterator[Flask]:
    app = app_factory(mail_url=smtp.url)
    app.test_client_class = Browser
    with app.app_context():
        yield app


def verify_path(smtp: SmtpServer, email: str = "alice@example.com") -> str:
    """The path of the confirmation link in the latest mail to `email`."""
    smtp.mailbox.wait_for(email)
    link = link_in(smtp.mailbox.sent_to(email)[-1], "/verify-email/")
    return "/verify-email/" + link.split("/verify-email/", 1)[1]


def confirm(browser: FlaskClient, path: str) -> TestResponse:
    """Open the link and press its button."""
    page = browser.get(path)
    assert page.status_code == 200, page.text
    return browser.post(path, data={"csrf_token": csrf_token(page.text)})


def unverified_alice() -> User:
    user = make_user(email_verified=False)
    send_verification_email(user)
    db.session.commit()  # as the request would: the mail sender reads the outbox
    return user


def test_the_link_shows_a_button_and_only_its_post_confirms(app: Flask, smtp: SmtpServer) -> None:
    user = unverified_alice()
    path = verify_path(smtp)
    browser = app.test_client()
    for _ in range(2):  # a mail scanner's prefetch uses nothing up
        page = browser.get(path)
        assert page.status_code == 200
        assert "Confirm my address" in page.text
        assert f'action="{path}"' in page.text
    db.session.refresh(user)
    assert user.email_verified is False

    done = browser.post(path, data={"csrf_token": csrf_token(page.text)})
    assert done.status_code == 200
    assert "E-mail address confirmed" in done.text
    db.session.refresh(user)
    assert user.email_verified is True


def test_the_link_works_once(app: Flask, smtp: SmtpServer) -> None:
    unverified_alice()
    path = verify_path(smtp)
    browser = app.test_client()
    assert confirm(browser, path).status_code == 200
    again = browser.get(path)
    assert again.status_code == 404
    assert "This link cannot be used" in again.text
    assert 'href="/"' in again.text


def test_an_expired_link_is_refused(app: Flask, smtp: SmtpServer) -> None:
    user = unverified_alice()
    path = verify_path(smtp)
    token = db.session.scalar(select(AccountToken))
    assert token is not None
    assert token.expires_at - token.created_at == timedelta(days=1)
    db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert app.test_client().get(path).status_code == 404
    db.session.refresh(user)
    assert user.email_verified is False


def test_confirming_needs_the_csrf_token(app: Flask, smtp: SmtpServer) -> None:
    user = unverified_alice()
    path = verify_path(smtp)
    assert app.test_client().post(path).status_code == 400
    db.session.refresh(user)
    assert user.email_verified is False


def test_unknown_links_show_the_error_page(client: FlaskClient) -> None:
    for path in ("/verify-email/nope", "/verify-email/" + "a" * 300):
        response = client.get(path)
        assert response.status_code == 404
        assert "This link cannot be used" in response.text


def test_a_signed_in_person_can_ask_for_a_new_link(app: Flask, smtp: SmtpServer) -> None:
    unverified_alice()
    first = verify_path(smtp)
    browser = app.test_client()
    sign_in(browser)
    home = browser.get("/")
    assert "Please confirm your e-mail address" in home.text

    # Not more than one link a minute: the button answers the same but sends nothing.
    response = browser.post("/verify-email/resend", data={"csrf_token": csrf_token(home.text)})
    assert response.status_code == 200 and "Check your e-mail" in response.text
    delivered()
    assert len(smtp.mailbox.sent_to("alice@example.com")) == 1

    db.session.execute(update(AccountToken).values(created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    home = browser.get("/")
    browser.post("/verify-email/resend", data={"csrf_token": csrf_token(home.text)})
    delivered()
    assert len(smtp.mailbox.sent_to("alice@example.com")) == 2
    second = verify_path(smtp)
    assert second != first

    assert confirm(browser, second).status_code == 200
    assert "Please confirm" not in browser.get("/").text
    # Both links proved the same address; the other one is void now.
    assert browser.get(first).status_code == 404


def test_resend_needs_a_signed_in_person(client: FlaskClient) -> None:
    page = client.get("/login")
    response = client.post("/verify-email/resend", data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_an_email_change_waits_for_the_new_address(app: Flask, smtp: SmtpServer) -> None:
    user = make_user()
    request_email_change(user, "Alice.New@Example.com")
    db.session.commit()  # the request\'s edge: the mail sender reads the outbox
    db.session.refresh(user)
    assert user.email == "alice@example.com"

    warning = smtp.mailbox.wait_for("alice@example.com")
    assert "alice.new@example.com" in text_part(warning)
    assert "/verify-email/" not in text_part(warning)

    path = verify_path(smtp, "alice.new@example.com")
    assert confirm(app.test_client(), path).status_code == 200
    db.session.refresh(user)
    assert (user.email, user.email_verified) == ("alice.new@example.com", True)


def test_an_address_of_another_account_is_not_taken_over(app: Flask, smtp: SmtpServer) -> None:
    user = make_user()
    make_user(email="bob@example.com", name="Bob")
    request_email_change(user, "bob@example.com")
    db.session.commit()  # the request\'s edge: the mail sender reads the outbox
    notice = smtp.mailbox.wait_for("bob@example.com")
    assert "/verify-email/" not in text_part(notice)
    assert "already belongs to an account" in text_part(notice)
    db.session.refresh(user)
    assert user.email == "alice@example.com"


def test_a_change_link_is_refused_once_the_address_was_taken_meanwhile(
    app: Flask, smtp: SmtpServer
) -> None:
    user = make_user()
    request_email_change(user, "new@example.com")
    db.session.commit()  # the request\'s edge: the mail sender reads the outbox
    path = verify_path(smtp, "new@example.com")
    make_user(email="new@example.com", name="Quick")
    browser = app.test_client()
    page = browser.get(path)
    response = browser.post(path, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 404
    db.session.refresh(user)
    assert user.email == "alice@example.com"


def test_a_confirmed_change_voids_links_for_the_old_address(app: Flask, smtp: SmtpServer) -> None:
    user = unverified_alice()
    old_link = verify_path(smtp)
    request_email_change(user, "alice.new@example.com")
    db.session.commit()  # the request\'s edge: the mail sender reads the outbox
    assert confirm(app.test_client(), verify_path(smtp, "alice.new@example.com")).status_code == 200
    assert app.test_client().get(old_link).status_code == 404
    db.session.refresh(user)
    assert user.email == "alice.new@example.com"
