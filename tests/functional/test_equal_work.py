"""Forgot-password, sign-up and sign-in do the same database work for an address with an
account as for one without: the same commits, the same writes to the same tables, the
same lookups. The only differences are the rows that are the account and its link
themselves (listed in ACCOUNT_ROWS); tests/functional/test_timing.py measures the time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event

from authserver.extensions import db
from tests.factories import PASSWORD, make_user
from tests.oauth_helpers import csrf_token

# The statements and COMMITs counted are the real ones, not the savepoints of a rollback.
pytestmark = pytest.mark.commits

NEW_PASSWORD = "plum tree under the bridge"
# What only an existing (forgot-password) or a new (sign-up) account can write: its link,
# and the account itself.
ACCOUNT_ROWS = {("INSERT", "account_tokens"), ("INSERT", "users")}


@contextmanager
def recorded(app: Flask) -> Iterator[Counter[tuple[str, str]]]:
    """(statement kind, table) for every statement and ("COMMIT", "") for every commit."""
    seen: Counter[tuple[str, str]] = Counter()
    with app.app_context():
        engine = db.engine

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        words = statement.split()
        kind = words[0].upper()
        if kind == "SELECT":
            table = words[words.index("FROM") + 1] if "FROM" in words else ""
        elif kind in ("INSERT", "DELETE"):
            table = words[2]
        elif kind == "UPDATE":
            table = words[1]
        else:
            table = ""
        seen[(kind, table.strip('"'))] += 1

    def commit(_conn: Any) -> None:
        seen[("COMMIT", "")] += 1

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)


@pytest.fixture
def app(app_factory: Any) -> Flask:
    """No app context held, no sender thread: only each request's own statements count."""
    app: Flask = app_factory(mail_sender="external", ratelimit_enabled=False)
    with app.app_context():
        make_user("member@example.com")
        make_user("member-2@example.com")
        db.session.remove()
    return app


def work(
    app: Flask, path: str, fields: dict[str, str], status: int = 200
) -> Counter[tuple[str, str]]:
    browser = app.test_client()
    token = csrf_token(browser.get(path).text)
    with recorded(app) as seen:
        response = browser.post(path, data={"csrf_token": token, **fields})
    assert response.status_code == status
    return seen


def without(seen: Counter[tuple[str, str]], *keys: tuple[str, str]) -> Counter[tuple[str, str]]:
    return Counter({key: count for key, count in seen.items() if key not in keys})


def test_forgot_password_does_the_same_work_for_every_address(app: Flask) -> None:
    known = work(app, "/password/forgot", {"email": "member@example.com"})
    unknown = work(app, "/password/forgot", {"email": "nobody@example.com"})
    assert known[("COMMIT", "")] == unknown[("COMMIT", "")] == 1
    assert known[("INSERT", "mail_outbox")] == unknown[("INSERT", "mail_outbox")] == 1
    assert without(known, *ACCOUNT_ROWS) == without(unknown, *ACCOUNT_ROWS)


def test_signup_does_the_same_work_for_every_address(app: Flask) -> None:
    def fields(address: str) -> dict[str, str]:
        return {
            "email": address,
            "name": "Someone",
            "password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        }

    known = work(app, "/signup", fields("member@example.com"))
    unknown = work(app, "/signup", fields("newcomer@example.com"))
    assert known[("COMMIT", "")] == unknown[("COMMIT", "")] == 1
    assert known[("INSERT", "mail_outbox")] == unknown[("INSERT", "mail_outbox")] == 1
    assert without(known, *ACCOUNT_ROWS) == without(unknown, *ACCOUNT_ROWS)


def test_a_wrong_password_does_the_same_work_for_every_address(app: Flask) -> None:
    known = work(app, "/login", {"email": "member-2@example.com", "password": "wrong password"})
    unknown = work(app, "/login", {"email": "nobody@example.com", "password": "wrong password"})
    # One lookup of the address, one commit for the audit event and the failure's count.
    assert known[("SELECT", "users")] == unknown[("SELECT", "users")] == 1
    assert known[("COMMIT", "")] == unknown[("COMMIT", "")] == 1
    assert known[("INSERT", "auth_failures")] == unknown[("INSERT", "auth_failures")] == 1
    assert known == unknown


def test_a_sign_in_looks_the_address_up_once_and_commits_once(app: Flask) -> None:
    seen = work(app, "/login", {"email": "member@example.com", "password": PASSWORD}, status=302)
    assert seen[("SELECT", "users")] == seen[("SELECT", "auth_failures")] == 1
    assert seen[("INSERT", "login_sessions")] == seen[("INSERT", "audit_events")] == 1
    assert seen[("DELETE", "auth_failures")] == 0  # no failure counted, none to clear
    assert seen[("COMMIT", "")] == 1
