"""The revocation epoch (core/epoch.py): what moves it, and what a cached answer is worth."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from authserver.core import epoch
from authserver.extensions import db, utcnow
from authserver.oauth.models import Grant, RevokedAccessToken
from tests.factories import make_client, make_user


def value() -> int:
    return int(db.session.scalar(epoch.READ) or 0)


def committed(change: Any) -> int:
    """How far committing `change()` moved the counter."""
    before = value()
    change()
    db.session.commit()
    return value() - before


def a_grant() -> Grant:
    user = make_user()
    client, _ = make_client()
    now = utcnow()
    grant = Grant(
        id="g" * 32,
        client_id=client.client_id,
        user_id=user.id,
        scope="openid",
        auth_time=now,
        expires_at=now + timedelta(days=1),
    )
    db.session.add(grant)
    db.session.commit()
    return grant


def test_a_revoked_tokens_record_moves_the_counter(app: Flask) -> None:
    with app.app_context():
        record = RevokedAccessToken(jti="j1", expires_at=utcnow() + timedelta(minutes=5))
        assert committed(lambda: db.session.add(record)) >= 1


def test_revoking_a_grant_moves_it_by_the_orm_or_by_a_statement(app: Flask) -> None:
    with app.app_context():
        grant = a_grant()
        assert committed(lambda: setattr(grant, "revoked_at", utcnow())) >= 1
        statement = update(Grant).where(Grant.id == grant.id).values(revoked_at=utcnow())
        assert committed(lambda: db.session.execute(statement)) >= 1


def test_changes_that_revoke_nothing_leave_it_alone(app: Flask) -> None:
    with app.app_context():
        grant = a_grant()
        user = make_user(email="bob@example.com")
        db.session.commit()
        assert committed(lambda: setattr(grant, "scope", "openid profile")) == 0
        assert committed(lambda: setattr(user, "name", "Bob")) == 0


def test_disabling_a_person_or_a_client_moves_it(app: Flask) -> None:
    with app.app_context():
        user = make_user()
        client, _ = make_client()
        db.session.commit()
        assert committed(lambda: setattr(user, "is_active", False)) >= 1
        assert committed(lambda: setattr(client, "is_active", False)) >= 1
        assert committed(lambda: db.session.delete(client)) >= 1


def test_a_rolled_back_change_moves_nothing(app: Flask) -> None:
    with app.app_context():
        grant = a_grant()
        before = value()
        grant.revoked_at = utcnow()
        db.session.flush()
        db.session.rollback()
        assert value() == before


def test_an_answer_is_good_only_at_the_value_it_was_read_under(app: Flask) -> None:
    with app.app_context():
        at = epoch.current()
        epoch.remember("test", "key", at, "answer")
        assert epoch.cached("test", "key", at) == "answer"
        assert epoch.cached("test", "key", at + 1) is None
        assert epoch.cached("test", "other", at) is None


def test_this_process_reads_the_counter_again_right_after_its_own_change(app: Flask) -> None:
    with app.app_context():
        grant = a_grant()
        before = epoch.current()
        grant.revoked_at = utcnow()
        db.session.commit()
        # Within POLL_SECONDS of the last read, yet the new value: no stale second here.
        assert epoch.current() > before


def test_the_counter_is_re_read_at_most_once_per_poll(app: Flask) -> None:
    with app.app_context():
        first = epoch.current()
        db.session.execute(epoch.BUMP, {"name": epoch.NAME})  # as if another instance
        assert epoch.current() == first
        app.extensions[epoch.EXTENSION].read_at -= epoch.POLL_SECONDS
        assert epoch.current() == first + 1
