"""Use this row once: the atomic UPDATE behind every single-use credential.

An e-mailed link, an authorization code (RFC 6749 section 4.1.2: "MUST NOT be used more
than once"), a rotated refresh token (RFC 9700 section 4.14.2), an approved device code
(RFC 8628 section 3.5): the first request that presents it wins, every other loses,
even when two arrive at the same instant. A read then a write cannot promise that; one
`UPDATE ... SET used_at = :now WHERE id = :id AND used_at IS NULL AND expires_at > :now`
whose row count is checked can: the database serializes the two writes, and the second
finds the row used.

`use_once` runs it in the caller's transaction (no commit); the caller decides what a
lost race means (a rollback, a replay to revoke). The statement is plain SQL on the
table (no ORM bookkeeping, nothing flushed first), so a hot path (the token endpoint)
can build it once with `use_once_statement` and run it with `run_once`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, Update, bindparam, update

from ..extensions import db, utcnow
from . import uow

ROW_ID = "once_row_id"
NOW = "once_now"


def use_once_statement(
    model: Any,
    *,
    used_column: str = "used_at",
    expires_column: str | None = "expires_at",
    when: tuple[ColumnElement[bool], ...] = (),
) -> Update:
    """The UPDATE marking one row used, with bind parameters `once_row_id` and `once_now`.

    `model` is a mapped class or its Table. Build it once and keep it for a hot path;
    `when` adds conditions (e.g. not revoked). Without `expires_column` the row never
    expires.
    """
    table: Table = getattr(model, "__table__", model)
    columns = table.c
    statement = update(table).where(
        columns.id == bindparam(ROW_ID), columns[used_column].is_(None), *when
    )
    if expires_column is not None:
        statement = statement.where(columns[expires_column] > bindparam(NOW))
    return statement.values({used_column: bindparam(NOW)})


def use_once(
    model: Any,
    row_id: Any,
    *,
    now: datetime | None = None,
    used_column: str = "used_at",
    expires_column: str | None = "expires_at",
    when: tuple[ColumnElement[bool], ...] = (),
) -> bool:
    """Mark the row used if it still is unused (and unexpired): True for the one winner.

    Not committed: the caller's commit stores the use with whatever it allowed.
    """
    statement = use_once_statement(
        model, used_column=used_column, expires_column=expires_column, when=when
    )
    return run_once(statement, row_id, now=now)


def run_once(statement: Update, row_id: Any, *, now: datetime | None = None) -> bool:
    """Execute a `use_once_statement` for one row; True when it changed exactly that row.

    On the session's connection, in its transaction; pending ORM changes are not flushed
    first, and loaded objects keep their old `used_at` until refreshed. A row it changed
    counts as a write of the unit of work (`core.uow`): the request's edge commits it, or
    rolls it back when the request fails.
    """
    result = db.session.connection().execute(statement, {ROW_ID: row_id, NOW: now or utcnow()})
    if result.rowcount:
        uow.wrote(db.session())
    return bool(result.rowcount == 1)
