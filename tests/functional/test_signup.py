"""Sign-up: a new, unverified account and its confirmation mail; the same answer for an
address that already has an account; switched off with AUTHSERVER_SIGNUP=false."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from authserver.accounts.models import AccountToken, User
from authserver.accounts.passwords import verify_password
from authserver.extensions import db
from tests.browser.mailbox import html_part, link_in, text_part
from tests.factories import PASSWORD, make_user
from tests.mail_helpers import Browser, SmtpServer, running_smtp
from tests.oauth_helpers import csrf_token, sign_in

NEW_PASSWORD = "plum tree under the bridge"


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


def sign_up(
    browser: FlaskClient,
    email: str = "dinah@example.com",
    password: str = NEW_PASSWORD,
    again: str | None = None,
    name: str = "Dinah Cat",
    query: str = "",
) -> TestResponse:
    page = browser.get("/signup" + query)
    assert page.status_code == 200, page.text
    data = {
        "name": name,
        "email": email,
        "password": password,
        "confirm_password": password if again is None else again,
        "csrf_token": csrf_token(page.text),
        "next": "/authorize?client_id=x" if query else "/",
    }
    return browser.post("/signup", data=data)


def test_the_signup_page_has_a_labelled_form_with_a_csrf_token(client: FlaskClient) -> None:
    page = client.get("/signup")
    assert page.status_code == 200
    for field in ("name", "email", "password", "confirm_password"):
        assert f'<label for="{field}">' in page.text
    assert 'autocomplete="new-password"' in page.text
    assert csrf_token(page.text)


def test_signing_up_creates_an_unverified_account_and_mails_the_link(
    app: Flask, smtp: SmtpServer
) -> None:
    browser = app.test_client()
    response = sign_up(browser, email="Dinah@Example.com")
    assert response.status_code == 200
    assert "Check your e-mail" in response.text
    assert "dinah@example.com" in response.text

    user = db.session.scalar(select(User))
    assert user is not None
    assert (user.email, user.name, user.email_verified) == ("dinah@example.com", "Dinah Cat", False)
    assert user.password_hash and verify_password(user.password_hash, NEW_PASSWORD)

    mail = smtp.mailbox.wait_for("dinah@example.com")
    assert mail["Subject"] == "Confirm your e-mail address for authserver"
    link = link_in(mail, "/verify-email/")
    assert link.startswith(app.config["AUTHSERVER"].issuer + "/verify-email/")
    assert link in html_part(mail)
    token = link.rsplit("/", 1)[1]
    stored = db.session.scalar(select(AccountToken))
    assert stored is not None and stored.purpose == "verify_email"
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.email == "dinah@example.com"


def test_the_new_account_can_sign_in_before_verifying_and_is_asked_to(
    app: Flask, smtp: SmtpServer
) -> None:
    browser = app.test_client()
    page = sign_up(browser, query="?next=/authorize%3Fclient_id%3Dx")
    # The page offers to sign in now, with the address filled in and the way back kept.
    assert (
        'href="/login?login_hint=dinah@example.com&amp;next=/authorize?client_id%3Dx"' in page.text
    )
    assert "You are not signed in" in browser.get("/").text

    sign_in(browser, "dinah@example.com", NEW_PASSWORD)
    home = browser.get("/")
    assert "Please confirm your e-mail address" in home.text
    assert 'action="/verify-email/resend"' in home.text


def test_an_address_with_an_account_gets_the_same_answer_and_its_owner_a_notice(
    app: Flask, smtp: SmtpServer
) -> None:
    owner = make_user(email="alice@example.com")
    taken = sign_up(app.test_client(), email="Alice@example.com")
    new = sign_up(app.test_client(), email="dinah@example.com")
    assert taken.status_code == new.status_code == 200
    assert taken.text.replace("alice@example.com", "X") == new.text.replace(
        "dinah@example.com", "X"
    )
    assert set(taken.headers.keys()) == set(new.headers.keys())

    notice = smtp.mailbox.wait_for("alice@example.com")
    assert "tried to sign up" in notice["Subject"]
    assert "/login" in text_part(notice) and "/password/forgot" in text_part(notice)
    assert "/verify-email/" not in text_part(notice)
    # Nothing about the existing account changed.
    assert db.session.scalar(select(func.count()).select_from(User)) == 2
    db.session.refresh(owner)
    assert owner.password_hash and verify_password(owner.password_hash, PASSWORD)
    assert owner.name == "Alice Liddell"


@pytest.mark.parametrize(
    ("fields", "error_field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter a valid e-mail address"),
        ({"email": ""}, "email", "Enter your e-mail address."),
        ({"password": "short"}, "password", "at least 8 characters"),
        ({"again": "another password"}, "confirm_password", "The two passwords do not match."),
        ({"name": "x" * 201}, "name", "at most 200 characters"),
    ],
)
def test_invalid_sign_ups_show_the_error_next_to_the_field(
    app: Flask, smtp: SmtpServer, fields: dict[str, str], error_field: str, message: str
) -> None:
    response = sign_up(app.test_client(), **fields)
    assert response.status_code == 422
    assert f'<p class="alert field-error" role="alert" id="{error_field}-error">' in response.text
    assert message in response.text
    field = re.search(rf'<input id="{error_field}"[^>]*>', response.text)
    assert field is not None
    assert 'aria-invalid="true"' in field.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', field.group(0))
    assert described is not None and f"{error_field}-error" in described.group(1).split()
    assert db.session.scalar(select(User)) is None
    assert smtp.mailbox.messages == []


def test_signing_up_needs_the_csrf_token(client: FlaskClient) -> None:
    response = client.post(
        "/signup",
        data={
            "email": "dinah@example.com",
            "password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 400
    assert db.session.scalar(select(User)) is None


def test_a_signed_in_person_is_sent_on_from_the_signup_page(app: Flask) -> None:
    make_user()
    browser = app.test_client()
    sign_in(browser)
    response = browser.get("/signup?next=/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_the_sign_in_page_links_to_signup_and_forgot_password(client: FlaskClient) -> None:
    page = client.get("/login?next=/account")
    assert 'href="/signup?next=/account"' in page.text
    assert 'href="/password/forgot"' in page.text


def test_signup_switched_off_is_not_found_and_not_linked(app_factory: Any) -> None:
    app = app_factory(signup=False)
    with app.app_context():
        browser = app.test_client()
        assert browser.get("/signup").status_code == 404
        refused = browser.post("/signup", data={"email": "dinah@example.com"})
        assert refused.status_code in (400, 404)
        page = browser.get("/login")
        assert "/signup" not in page.text
        assert 'href="/password/forgot"' in page.text
        assert db.session.scalar(select(User)) is None
