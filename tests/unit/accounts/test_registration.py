"""Sign-up, e-mail verification and reset: links stored as hashes, used once, no account oracle."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from authserver.accounts.email_change import verify_email_token
from authserver.accounts.lifecycle import end_all_sessions_and_tokens
from authserver.accounts.links import RESET_PASSWORD, VERIFY_EMAIL, peek_token
from authserver.accounts.links import issue as _issue
from authserver.accounts.models import AccountToken, User
from authserver.accounts.password_reset import request_password_reset, reset_password
from authserver.accounts.services import AccountError
from authserver.accounts.signup import register
from authserver.core.secrets import hash_secret as hash_token
from authserver.extensions import db, utcnow
from authserver.mail.links import absolute_url, describe_duration
from authserver.sessions.models import LoginSession
from tests.factories import make_user


def issued_token(purpose: str) -> AccountToken:
    row = db.session.scalar(select(AccountToken).where(AccountToken.purpose == purpose))
    assert row is not None
    return row


def link_token(user: User, purpose: str) -> str:
    """A live link token of `purpose` for `user`, as if it had been mailed."""
    token = _issue(user, purpose, user.email)
    db.session.commit()
    return token


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1800, "30 minutes"),
        (60, "1 minute"),
        (3600, "1 hour"),
        (86400, "24 hours"),
        (172800, "2 days"),
        (90, "2 minutes"),
    ],
)
def test_durations_read_as_words(seconds: int, words: str) -> None:
    assert describe_duration(seconds) == words


def test_links_start_with_the_issuer(app: Flask) -> None:
    issuer = app.config["AUTHSERVER"].issuer
    assert absolute_url("accounts.reset_password", token="abc") == f"{issuer}/password/reset/abc"


def test_register_creates_an_unverified_account_with_a_hashed_link(app: Flask) -> None:
    user = register(" Dinah@Example.com ", "plum tree under the bridge", "  Dinah   Cat ")
    assert user is not None
    assert (user.email, user.name, user.email_verified) == ("dinah@example.com", "Dinah Cat", False)
    row = issued_token(VERIFY_EMAIL)
    assert row.user_id == user.id and row.email == "dinah@example.com"
    assert len(row.token_hash) == 64


def test_register_an_existing_address_creates_nothing(app: Flask) -> None:
    make_user()
    assert register("alice@example.com", "another long password", "Mallory") is None
    assert db.session.scalar(select(func.count()).select_from(User)) == 1
    assert db.session.scalar(select(AccountToken)) is None


def test_register_checks_the_address_and_the_password(app: Flask) -> None:
    with pytest.raises(AccountError):
        register("not-an-address", "plum tree under the bridge", "")
    with pytest.raises(AccountError):
        register("dinah@example.com", "short", "")
    assert db.session.scalar(select(User)) is None


def test_a_verification_token_is_used_once(app: Flask) -> None:
    user = make_user(email_verified=False)
    token = link_token(user, VERIFY_EMAIL)
    assert issued_token(VERIFY_EMAIL).token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert verify_email_token(token) is user
    assert user.email_verified is True
    assert verify_email_token(token) is None
    assert peek_token(token, VERIFY_EMAIL) is None


def test_a_token_only_works_for_its_purpose(app: Flask) -> None:
    user = make_user()
    token = link_token(user, RESET_PASSWORD)
    assert verify_email_token(token) is None
    assert peek_token(token, RESET_PASSWORD) is not None


def test_reset_refuses_a_weak_password_before_using_the_link(app: Flask) -> None:
    token = link_token(make_user(), RESET_PASSWORD)
    with pytest.raises(AccountError):
        reset_password(token, "short")
    assert peek_token(token, RESET_PASSWORD) is not None
    assert reset_password(token, "a much better password") is not None
    assert reset_password(token, "a much better password") is None


def test_reset_with_an_expired_link_changes_nothing(app: Flask) -> None:
    user = make_user()
    token = link_token(user, RESET_PASSWORD)
    db.session.execute(update(AccountToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    before = user.password_hash
    assert reset_password(token, "a much better password") is None
    db.session.refresh(user)
    assert user.password_hash == before and user.password_changed_at is None


def test_an_unknown_address_gets_no_token(app: Flask) -> None:
    request_password_reset("nobody@example.com")
    request_password_reset("not an address")
    assert db.session.scalar(select(AccountToken)) is None


def test_end_all_sessions_can_keep_one(app: Flask) -> None:
    user = make_user()
    now = utcnow()
    for session_id in ("a" * 64, "b" * 64):
        db.session.add(
            LoginSession(
                id=session_id,
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                auth_time=now,
                amr=["pwd"],
                expires_at=now + timedelta(hours=1),
            )
        )
    db.session.commit()
    end_all_sessions_and_tokens(user, keep_session_id="a" * 64)
    db.session.commit()
    live = db.session.scalars(select(LoginSession.id).where(LoginSession.revoked_at.is_(None)))
    assert live.all() == ["a" * 64]


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
