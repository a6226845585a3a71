"""core.once: of every request presenting a single-use row, exactly one wins."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from authserver.accounts.links import VERIFY_EMAIL, issue, peek_token
from authserver.accounts.models import AccountToken
from authserver.core.once import use_once
from authserver.core.secrets import hash_secret
from authserver.extensions import db, utcnow
from tests.factories import make_user


def stored(token: str) -> AccountToken:
    row = db.session.query(AccountToken).filter_by(token_hash=hash_secret(token)).one()
    return row


def test_the_first_use_wins_and_every_later_one_loses(app: Flask) -> None:
    token = issue(make_user(), VERIFY_EMAIL, "alice@example.com")
    db.session.commit()
    row_id = stored(token).id

    assert use_once(AccountToken, row_id) is True
    assert use_once(AccountToken, row_id) is False
    db.session.commit()
    assert peek_token(token, VERIFY_EMAIL) is None


def test_an_expired_row_cannot_be_used(app: Flask) -> None:
    token = issue(make_user(), VERIFY_EMAIL, "alice@example.com")
    db.session.commit()
    row = stored(token)
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert use_once(AccountToken, row.id) is False


def test_a_row_without_expiry_column_is_used_once(app: Flask) -> None:
    token = issue(make_user(), VERIFY_EMAIL, "alice@example.com")
    db.session.commit()
    row_id = stored(token).id

    assert use_once(AccountToken, row_id, expires_column=None) is True
    assert use_once(AccountToken, row_id, expires_column=None) is False
