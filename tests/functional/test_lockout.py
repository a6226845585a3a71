"""Brute-force protection per account: delays, a short lock, the same answers for everyone."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authserver.accounts.lockout import delay_after
from authserver.accounts.models import AuthFailure
from authserver.audit.models import AuditEvent
from authserver.extensions import db
from tests.factories import make_user
from tests.functional.test_sign_in import sign_in
from tests.mail_helpers import delivered, running_smtp


def answer(response: Any) -> tuple[int, bool, str]:
    """What a sign-in attempt tells the person: status, signed in or not, the page's text."""
    body = response.get_data(as_text=True)
    text = re.sub(r"<[^>]+>|\s+", " ", re.sub(r'value="[^"]*"', "", body))
    return response.status_code, response.status_code == 302, text


def age_failures(seconds: int) -> None:
    """Pretend every recorded failure happened `seconds` earlier."""
    for failure in db.session.scalars(select(AuthFailure)):
        failure.created_at -= timedelta(seconds=seconds)
    db.session.commit()


def test_delays_grow_after_three_failures_and_cap_at_a_minute() -> None:
    assert [delay_after(n) for n in range(8)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert delay_after(40) == 60


def test_an_early_attempt_is_refused_like_a_wrong_password(app: Flask, client: FlaskClient) -> None:
    make_user()
    wrong = [answer(sign_in(client, password="wrong password")) for _ in range(3)]
    early = answer(sign_in(client))  # right password, but too soon
    assert early == wrong[-1]
    assert "Incorrect e-mail or password" in early[2]
    age_failures(1)
    assert sign_in(client).status_code == 302


def test_the_wait_grows_with_each_failure(app: Flask, client: FlaskClient) -> None:
    make_user()
    for _ in range(3):
        sign_in(client, password="wrong password")
    age_failures(1)
    sign_in(client, password="wrong password")  # the 4th: the next waits 2 seconds
    age_failures(1)
    assert sign_in(client).status_code == 200
    age_failures(1)
    assert sign_in(client).status_code == 302


def test_lock_answers_the_same_for_known_and_unknown_addresses(app_factory: Any) -> None:
    app = app_factory(lockout_threshold=3)
    with app.app_context():
        make_user()
    known, unknown = app.test_client(), app.test_client()
    with app.app_context():
        for _ in range(3):
            a = answer(sign_in(known, password="wrong password"))
            b = answer(sign_in(unknown, email="nobody@example.com", password="wrong password"))
            assert a == b
        locked = answer(sign_in(known))  # the right password
        assert locked == answer(sign_in(unknown, email="nobody@example.com"))
    assert locked[:2] == (200, False)
    assert "Try again later" in locked[2]


@pytest.mark.commits  # the mail sender reads the outbox on its own connection
def test_a_lock_emails_the_owner_once_and_is_audited(app_factory: Any) -> None:
    with running_smtp() as smtp:
        app = app_factory(lockout_threshold=3, mail_url=smtp.url)
        client = app.test_client()
        with app.app_context():
            make_user()
            for _ in range(5):
                sign_in(client, password="wrong password")
            assert db.session.query(AuditEvent).filter_by(event="signin.locked").count() == 1
            delivered()
    messages = [m for m in smtp.mailbox.messages if "paused" in str(m["Subject"])]
    assert len(messages) == 1
    assert messages[0]["To"] == "alice@example.com"


def test_the_right_password_is_refused_while_locked_and_accepted_after(app_factory: Any) -> None:
    app = app_factory(lockout_threshold=3, lockout_duration=600)
    client = app.test_client()
    with app.app_context():
        make_user()
        for _ in range(3):
            sign_in(client, password="wrong password")
        assert sign_in(client).status_code == 200
        age_failures(601)
        assert sign_in(client).status_code == 302


def test_a_success_clears_the_count(app: Flask, client: FlaskClient) -> None:
    make_user()
    sign_in(client, password="wrong password")
    sign_in(client, password="wrong password")
    assert sign_in(client).status_code == 302
    assert db.session.query(AuthFailure).count() == 0


def test_a_password_reset_ends_the_lock(app_factory: Any) -> None:
    from authserver.accounts.links import RESET_PASSWORD
    from authserver.accounts.links import issue as _issue
    from authserver.accounts.password_reset import reset_password

    app = app_factory(lockout_threshold=3)
    client = app.test_client()
    with app.app_context():
        user = make_user()
        for _ in range(3):
            sign_in(client, password="wrong password")
        assert sign_in(client).status_code == 200
        age_failures(1)  # the reset happens after the failures, as it would in time
        token = _issue(user, RESET_PASSWORD, user.email)
        db.session.commit()
        assert reset_password(token, "a brand new passphrase") is not None
        assert sign_in(client, password="a brand new passphrase").status_code == 302
