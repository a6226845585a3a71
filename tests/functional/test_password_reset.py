"""Forgot password: the same answer for every address, a mailed single-use link stored
only as a hash, and a new password that ends every session and refresh token."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from authserver.accounts.models import AccountToken, User
from authserver.extensions import db, utcnow
from authserver.sessions.models import LoginSession
from tests.browser.mailbox import link_in, text_part
from tests.factories import PASSWORD, make_client, make_user
from tests.mail_helpers import Browser, SmtpServer, delivered, running_smtp
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, sign_in

NEW_PASSWORD = "seven swans a-swimming"


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


def ask_for_link(browser: FlaskClient, email: str) -> TestResponse:
    page = browser.get("/password/forgot")
    return browser.post(
        "/password/forgot", data={"email": email, "csrf_token": csrf_token(page.text)}
    )


def reset_path(smtp: SmtpServer, email: str = "alice@example.com") -> str:
    """The path of the reset link in the latest mail to `email`."""
    smtp.mailbox.wait_for(email)
    link = link_in(smtp.mailbox.sent_to(email)[-1], "/password/reset/")
    return "/password/reset/" + link.split("/password/reset/", 1)[1]


def choose_password(
    browser: FlaskClient, path: str, password: str = NEW_PASSWORD, again: str | None = None
) -> TestResponse:
    page = browser.get(path)
    assert page.status_code == 200, page.text
    data = {
        "password": password,
        "confirm_password": password if again is None else again,
        "csrf_token": csrf_token(page.text),
    }
    return browser.post(path, data=data)


def can_sign_in(app: Flask, password: str) -> bool:
    browser = app.test_client()
    page = browser.get("/login")
    response = browser.post(
        "/login",
        data={
            "email": "alice@example.com",
            "password": password,
            "csrf_token": csrf_token(page.text),
        },
    )
    return response.status_code == 302


def test_the_mailed_link_sets_a_new_password(app: Flask, smtp: SmtpServer) -> None:
    user = make_user()
    browser = app.test_client()
    response = ask_for_link(browser, "Alice@Example.com")
    assert response.status_code == 200
    assert "Check your e-mail" in response.text

    mail = smtp.mailbox.wait_for("alice@example.com")
    assert mail["Subject"] == "Reset your authserver password"
    assert "30 minutes" in text_part(mail)
    path = reset_path(smtp)
    page = browser.get(path)
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in page.text

    response = choose_password(browser, path)
    assert response.status_code == 200
    assert "Password changed" in response.text
    assert 'href="/login' in response.text
    db.session.refresh(user)
    assert user.password_changed_at is not None
    assert can_sign_in(app, NEW_PASSWORD)
    assert not can_sign_in(app, PASSWORD)
    delivered()
    subjects = [mail["Subject"] for mail in smtp.mailbox.sent_to("alice@example.com")]
    assert subjects == ["Reset your authserver password", "Your authserver password was changed"]


def test_the_token_is_stored_only_as_its_sha256(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    ask_for_link(app.test_client(), "alice@example.com")
    token = reset_path(smtp).rsplit("/", 1)[1]
    assert len(token) >= 43
    row = db.session.scalar(select(AccountToken))
    assert row is not None and row.purpose == "reset_password"
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.email)
    assert row.expires_at - row.created_at == timedelta(minutes=30)


def test_the_link_works_once(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    path = reset_path(smtp)
    assert choose_password(browser, path).status_code == 200
    used = browser.get(path)
    assert used.status_code == 404
    assert "This link cannot be used" in used.text
    assert 'href="/password/forgot"' in used.text


def test_the_link_expires_after_30_minutes(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    path = reset_path(smtp)
    db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert browser.get(path).status_code == 404
    assert can_sign_in(app, PASSWORD)


def test_unknown_links_show_the_error_page_with_a_way_on(client: FlaskClient) -> None:
    response = client.get("/password/reset/not-a-real-token")
    assert response.status_code == 404
    assert 'href="/password/forgot"' in response.text
    response = client.get("/password/reset/" + "x" * 500)
    assert response.status_code == 404


def test_known_and_unknown_addresses_get_the_same_answer(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    known = ask_for_link(app.test_client(), "alice@example.com")
    unknown = ask_for_link(app.test_client(), "nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace("alice@example.com", "X") == unknown.text.replace(
        "nobody@example.com", "X"
    )
    assert set(known.headers.keys()) == set(unknown.headers.keys())
    smtp.mailbox.wait_for("alice@example.com")
    assert smtp.mailbox.sent_to("nobody@example.com") == []
    assert db.session.scalar(select(AccountToken.email)) == "alice@example.com"


def test_disabled_accounts_get_no_link(app: Flask, smtp: SmtpServer) -> None:
    user = make_user()
    user.is_active = False
    db.session.commit()
    response = ask_for_link(app.test_client(), "alice@example.com")
    assert "Check your e-mail" in response.text
    assert db.session.scalar(select(AccountToken)) is None


def test_asking_again_within_a_minute_sends_no_second_mail(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    smtp.mailbox.wait_for("alice@example.com")
    again = ask_for_link(browser, "alice@example.com")
    assert "Check your e-mail" in again.text
    assert len(db.session.scalars(select(AccountToken)).all()) == 1


def test_a_new_password_voids_the_other_reset_links(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    first = reset_path(smtp)
    db.session.execute(update(AccountToken).values(created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    smtp.mailbox.clear()
    ask_for_link(browser, "alice@example.com")
    second = reset_path(smtp)
    assert first != second
    assert choose_password(browser, second).status_code == 200
    assert browser.get(first).status_code == 404


def test_a_weak_or_mismatched_password_is_refused_and_the_link_stays_usable(
    app: Flask, smtp: SmtpServer
) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    path = reset_path(smtp)

    short = choose_password(browser, path, "short")
    assert short.status_code == 422
    assert 'id="password-error"' in short.text and 'role="alert"' in short.text
    assert "at least 8 characters" in short.text
    mismatch = choose_password(browser, path, NEW_PASSWORD, "something else entirely")
    assert mismatch.status_code == 422
    assert 'id="confirm_password-error"' in mismatch.text
    assert 'aria-invalid="true"' in mismatch.text

    assert choose_password(browser, path).status_code == 200


def test_the_reset_form_needs_its_csrf_token(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    path = reset_path(smtp)
    response = browser.post(path, data={"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert can_sign_in(app, PASSWORD)


def test_a_new_password_signs_out_every_session(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    laptop = app.test_client()
    sign_in(laptop)
    assert "You are signed in" in laptop.get("/").text

    phone = app.test_client()
    ask_for_link(phone, "alice@example.com")
    assert choose_password(phone, reset_path(smtp)).status_code == 200

    assert "You are not signed in" in laptop.get("/").text
    live = db.session.scalars(select(LoginSession).where(LoginSession.revoked_at.is_(None)))
    assert live.all() == []


def test_a_new_password_revokes_refresh_tokens(app: Flask, smtp: SmtpServer) -> None:
    make_user()
    rp, secret = make_client()
    assert secret is not None
    browser = app.test_client()
    sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    tokens = exchange(browser, rp.client_id, secret, code, verifier).get_json()
    assert tokens["refresh_token"]

    ask_for_link(app.test_client(), "alice@example.com")
    assert choose_password(app.test_client(), reset_path(smtp)).status_code == 200

    refused = app.test_client().post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(rp.client_id, secret),
    )
    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_grant"
    introspected = app.test_client().post(
        "/oauth2/introspect",
        data={"token": tokens["access_token"]},
        headers=basic(rp.client_id, secret),
    )
    assert introspected.get_json() == {"active": False}


def test_opening_the_link_proves_the_address(app: Flask, smtp: SmtpServer) -> None:
    user = make_user(email_verified=False)
    browser = app.test_client()
    ask_for_link(browser, "alice@example.com")
    choose_password(browser, reset_path(smtp))
    db.session.refresh(user)
    assert user.email_verified is True
    assert db.session.scalar(select(User.email)) == "alice@example.com"
