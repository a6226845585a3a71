"""Creating people and checking their password."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from authserver.accounts.models import Role, User
from authserver.accounts.passwords import hash_password
from authserver.accounts.services import (
    AccountError,
    authenticate,
    create_user,
    get_user_by_sub,
    normalize_email,
)
from authserver.extensions import db
from tests.factories import PASSWORD, make_user


class VerifyCounter:
    """Counts argon2 verifications, delegating to the app's real hasher."""

    def __init__(self, app: Flask) -> None:
        hash_password("builds the app's hasher")
        hashers = app.extensions["authserver.passwords"]
        self.real = hashers.hasher
        self.calls = 0
        hashers.hasher = self

    def verify(self, encoded: str, password: str) -> bool:
        self.calls += 1
        return bool(self.real.verify(encoded, password))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_normalize_email_trims_and_lower_cases() -> None:
    assert normalize_email("  Alice@Example.COM ") == "alice@example.com"


def test_create_user_stores_a_normalized_email_and_an_argon2id_hash(app: Flask) -> None:
    user = create_user(" Bob@Example.com ", password=PASSWORD, name=" Bob ")

    assert user.email == "bob@example.com"
    assert user.name == "Bob"
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert user.sub and "@" not in user.sub
    assert user.is_active and not user.email_verified


def test_create_user_without_password_cannot_sign_in(app: Flask) -> None:
    user = create_user("nopass@example.com", password=None)

    assert user.password_hash is None
    assert authenticate("nopass@example.com", "") is None
    assert authenticate("nopass@example.com", PASSWORD) is None


def test_create_user_refuses_a_duplicate_email_in_any_case(app: Flask) -> None:
    make_user(email="alice@example.com")

    with pytest.raises(AccountError, match="already exists"):
        create_user("ALICE@example.com", password=PASSWORD)


@pytest.mark.parametrize(
    "email", ["", "alice", "@example.com", "alice@", "a b@example.com", "a@b@c", "a\x00@b.c"]
)
def test_create_user_refuses_an_invalid_email(app: Flask, email: str) -> None:
    with pytest.raises(AccountError, match="e-mail"):
        create_user(email, password=PASSWORD)


def test_create_user_refuses_a_short_password(app: Flask) -> None:
    with pytest.raises(AccountError, match="at least 8"):
        create_user("short@example.com", password="1234567")
    assert db.session.query(User).count() == 0


def test_create_user_reuses_builtin_roles_and_creates_unknown_ones(app: Flask) -> None:
    user = create_user("admin@example.com", password=PASSWORD, roles=["admin", "auditor"])

    assert user.role_names == ["admin", "auditor"]
    auditor = db.session.query(Role).filter_by(name="auditor").one()
    admin = db.session.query(Role).filter_by(name="admin").one()
    assert not auditor.builtin
    assert admin.builtin


def test_authenticate_returns_the_user_for_the_right_password(app: Flask) -> None:
    user = make_user()

    assert authenticate("alice@example.com", PASSWORD) == user
    assert authenticate("  ALICE@example.com", PASSWORD) == user


def test_authenticate_refuses_a_wrong_password_and_an_unknown_email(app: Flask) -> None:
    make_user()

    assert authenticate("alice@example.com", "wrong password") is None
    assert authenticate("nobody@example.com", PASSWORD) is None


def test_authenticate_refuses_an_inactive_user(app: Flask) -> None:
    user = make_user()
    user.is_active = False
    db.session.commit()

    assert authenticate("alice@example.com", PASSWORD) is None


def test_authenticate_does_the_same_hash_work_for_an_unknown_email(app: Flask) -> None:
    make_user()
    counter = VerifyCounter(app)

    authenticate("alice@example.com", "wrong password")
    known = counter.calls
    authenticate("nobody@example.com", "wrong password")
    unknown = counter.calls - known
    authenticate("not an e-mail\x00", "wrong password")
    malformed = counter.calls - known - unknown

    assert known == unknown == malformed == 1


def test_authenticate_rehashes_when_the_cost_changed(app: Flask, app_factory: Any) -> None:
    make_user()
    stronger = app_factory(argon2_time_cost=2)

    with stronger.app_context():
        user = authenticate("alice@example.com", PASSWORD)
        assert user is not None
        assert user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$v=19$m=1024,t=2,p=1$")
        stored = db.session.get(User, user.id)
        assert stored is not None and stored.password_hash == user.password_hash
        assert authenticate("alice@example.com", PASSWORD) == user


def test_get_user_by_sub(app: Flask) -> None:
    user = make_user()

    assert get_user_by_sub(user.sub) == user
    assert get_user_by_sub("unknown") is None
    assert get_user_by_sub("") is None
