"""One unit of work per request and per CLI command, committed at the edge (core/uow.py)."""

from __future__ import annotations

from typing import Any

import click
import pytest
from flask import Flask, abort
from sqlalchemy import event, func, select, update

from authserver.accounts.links import VERIFY_EMAIL, issue
from authserver.accounts.models import AccountToken
from authserver.audit.models import AuditEvent
from authserver.audit.services import record
from authserver.core import uow
from authserver.core.once import use_once
from authserver.extensions import db
from tests.factories import make_user


@pytest.fixture
def app(app_factory: Any) -> Any:
    """An app with routes that write (or not) and answer with the status asked for."""
    app = app_factory()

    @app.get("/write/<int:status>")
    def write(status: int) -> Any:
        record("test.write", actor="tester", actor_type="system")
        if status == 500:
            raise RuntimeError("the view failed")
        return "", status

    @app.get("/keep/<int:status>")
    def keep(status: int) -> Any:
        record("test.kept", actor="tester", actor_type="system")
        uow.keep()
        return "", status

    @app.get("/statement")
    def statement() -> Any:
        db.session.execute(update(AuditEvent).values(actor="changed"))
        abort(400)

    @app.get("/use-once/<int:row_id>/<int:status>")
    def consume(row_id: int, status: int) -> Any:
        assert use_once(AccountToken, row_id)
        return "", status

    @app.get("/read")
    def read() -> Any:
        return str(db.session.scalar(select(func.count()).select_from(AuditEvent)))

    @app.cli.command("write-then")
    @click.argument("outcome")
    def write_then(outcome: str) -> None:
        record("test.cli", actor="tester", actor_type="system")
        if outcome == "fail":
            raise click.ClickException("refused")

    uow.wrap_commands(app.cli)
    with app.app_context():
        yield app


def events() -> int:
    """Audit rows that outlive the session's current transaction (what was committed)."""
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0


@pytest.fixture
def transactions(app: Flask) -> dict[str, int]:
    """How many commits and rollbacks the session made."""
    seen = {"commit": 0, "rollback": 0}

    def count(kind: str) -> Any:
        return lambda _session: seen.__setitem__(kind, seen[kind] + 1)

    on_commit, on_rollback = count("commit"), count("rollback")
    event.listen(db.session, "after_commit", on_commit)
    event.listen(db.session, "after_rollback", on_rollback)
    yield seen
    event.remove(db.session, "after_commit", on_commit)
    event.remove(db.session, "after_rollback", on_rollback)


@pytest.mark.parametrize("status", [200, 204, 302])
def test_a_request_that_succeeds_commits_its_writes(app: Flask, status: int) -> None:
    assert app.test_client().get(f"/write/{status}").status_code == status
    assert events() == 1


@pytest.mark.parametrize("status", [400, 403, 500])
def test_a_request_that_fails_keeps_nothing(app: Flask, status: int) -> None:
    assert app.test_client().get(f"/write/{status}").status_code == status
    assert events() == 0


def test_a_statement_counts_as_a_write(app: Flask) -> None:
    record("test.before", actor="before", actor_type="system")
    db.session.commit()
    assert app.test_client().get("/statement").status_code == 400
    db.session.rollback()
    assert db.session.scalar(select(AuditEvent.actor)) == "before"


@pytest.mark.parametrize(("status", "used"), [(200, True), (302, True), (400, False)])
def test_a_row_used_once_is_a_write(app: Flask, status: int, used: bool) -> None:
    """use_once runs plain SQL on the connection: its request commits or rolls it back."""
    issue(make_user(), VERIFY_EMAIL, "alice@example.com")
    db.session.commit()
    row_id = db.session.scalar(select(AccountToken.id))
    assert app.test_client().get(f"/use-once/{row_id}/{status}").status_code == status
    db.session.rollback()
    assert (db.session.scalar(select(AccountToken.used_at)) is not None) is used


def test_kept_writes_outlive_an_error_answer(app: Flask) -> None:
    assert app.test_client().get("/keep/400").status_code == 400
    assert events() == 1


def test_a_request_that_only_reads_neither_commits_nor_rolls_back(
    app: Flask, transactions: dict[str, int]
) -> None:
    client = app.test_client()
    client.get("/read")
    assert client.get("/read").text == "0"
    assert transactions == {"commit": 0, "rollback": 0}


def test_a_command_commits_when_it_succeeds_and_keeps_nothing_when_it_fails(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["write-then", "succeed"]).exit_code == 0
    assert events() == 1
    assert runner.invoke(args=["write-then", "fail"]).exit_code == 1
    assert events() == 1


def test_wrapping_the_commands_twice_wraps_them_once(app: Flask) -> None:
    command = app.cli.commands["write-then"]
    wrapped = command.callback
    uow.wrap_commands(app.cli)
    assert command.callback is wrapped


@pytest.fixture
def reader(app_factory: Any) -> Any:
    """Routes that declare themselves read-only, then read or write."""
    app = app_factory()

    @app.get("/read-only/read")
    def read_only_read() -> Any:
        uow.read_only()
        count = db.session.scalar(select(func.count()).select_from(AuditEvent))
        connection = db.session.connection()
        return {
            "count": count,
            "level": connection.get_execution_options().get("isolation_level"),
            "open_on_server": database_transaction_open(connection.connection.dbapi_connection),
        }

    @app.get("/read-only/write")
    def read_only_write() -> Any:
        uow.read_only()
        record("test.write", actor="tester", actor_type="system")
        db.session.flush()
        return "", 200

    return app


@pytest.mark.commits
def test_a_read_only_request_reads_outside_a_transaction(reader: Flask) -> None:
    answer = reader.test_client().get("/read-only/read")
    assert answer.status_code == 200
    assert answer.get_json()["level"] == "AUTOCOMMIT"
    assert answer.get_json()["open_on_server"] is False


def database_transaction_open(dbapi_connection: Any) -> bool:
    """Whether the driver's connection is inside a transaction (sqlite3 or psycopg)."""
    if hasattr(dbapi_connection, "in_transaction"):
        return bool(dbapi_connection.in_transaction)
    return bool(dbapi_connection.info.transaction_status != 0)  # psycopg: 0 is IDLE


@pytest.mark.commits
def test_a_read_only_request_that_writes_fails_and_keeps_nothing(reader: Flask) -> None:
    assert reader.test_client().get("/read-only/write").status_code == 500
    with reader.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0
