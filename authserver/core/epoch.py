"""The revocation epoch: per-process caches of revocation state, invalidated across instances.

Hot paths keep what they learned about revocation in memory (is this access token
revoked, is this client active, and since when are its tokens valid), so that a
resource server introspecting the same token on every API call, or a client calling
userinfo again, costs no database read. Such a cache must never outlive a revocation
made elsewhere. One counter in the database, `cache_epochs.revocation`, is the whole
protocol:

- every transaction that changes revocation state (a watched column or row: `watch`)
  increments the counter in that same transaction, so the new value is visible exactly
  when the revocation is;
- every cached answer is labelled with the counter's value read *before* the database
  was asked, and is used only while the counter still has that value;
- each process re-reads the counter at most `POLL_SECONDS` after its last read, and at
  once after committing a change of its own.

So an answer cached anywhere is dropped no later than `POLL_SECONDS` (one second) after a
revocation commits on any instance, on SQLite and PostgreSQL, with or without Redis.
Revocations are rare (a logout, a replayed refresh token, an administrator's action);
each one empties every cache once, which costs each process one read per entry again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import BigInteger, String, event, inspect, select, text
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from ..extensions import db
from . import uow

EXTENSION = "authserver.epoch"
NAME = "revocation"
# The staleness bound of every revocation cache: a process re-reads the counter this often.
POLL_SECONDS = 1.0
# Key of Session.info: this transaction changed revocation state.
CHANGED = "authserver.epoch.changed"
BUMP = text(
    "INSERT INTO cache_epochs (name, value) VALUES (:name, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = cache_epochs.value + 1"
)


class CacheEpoch(db.Model):  # type: ignore[name-defined]
    """A counter that moves whenever what some cache holds may have become wrong."""

    __tablename__ = "cache_epochs"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


READ = select(CacheEpoch.value).where(CacheEpoch.name == NAME)


@dataclass(frozen=True)
class Watched:
    """What of one table changes revocation state: new rows, deleted rows, some columns."""

    table: str
    columns: frozenset[str] = frozenset()
    inserts: bool = False
    deletes: bool = True


@dataclass
class Epoch:
    """One process's view of the counter, and the caches labelled with it."""

    value: int | None = None
    read_at: float = float("-inf")
    watched: dict[str, Watched] = field(default_factory=dict)
    caches: dict[str, dict[Any, tuple[int, Any]]] = field(default_factory=dict)


def init_app(app: Flask) -> None:
    """Give `app` its epoch; notice revocation changes in every transaction of db.session."""
    app.extensions[EXTENSION] = Epoch()
    if not event.contains(db.session, "after_flush", _noticed_flush):
        event.listen(db.session, "after_flush", _noticed_flush)
        event.listen(db.session, "do_orm_execute", _noticed_statement)
        event.listen(db.session, "before_commit", _bump_before_commit)
        event.listen(db.session, "after_commit", _reread_after_commit)
        event.listen(db.session, "after_rollback", _forget_change)


def watch(app: Flask, model: Any, *, columns: Iterable[str] = (), inserts: bool = False) -> None:
    """Declare that changing `columns` of `model` (or deleting a row) changes revocation
    state; `inserts` when a new row does too (a revoked token's record)."""
    table = model.__table__.name
    _epoch(app).watched[table] = Watched(table, frozenset(columns), inserts)


def current() -> int:
    """The counter's value, re-read when the last read is `POLL_SECONDS` old."""
    epoch = _epoch(current_app)
    now = time.monotonic()
    if epoch.value is None or now - epoch.read_at >= POLL_SECONDS:
        epoch.value = int(db.session.scalar(READ) or 0)
        epoch.read_at = now
    return epoch.value


def cached(cache: str, key: Any, at: int) -> Any:
    """The answer cached under `key` while the counter was `at`, or None."""
    hit = _epoch(current_app).caches.get(cache, {}).get(key)
    if hit is None or hit[0] != at:
        return None
    return hit[1]


def remember(cache: str, key: Any, at: int, answer: Any, limit: int = 10_000) -> None:
    """Keep `answer` for `key`, valid while the counter stays `at` (read before asking)."""
    entries = _epoch(current_app).caches.setdefault(cache, {})
    if len(entries) >= limit:
        entries.clear()
    entries[key] = (at, answer)


def _epoch(app: Flask) -> Epoch:
    epoch: Epoch = app.extensions[EXTENSION]
    return epoch


def _watched() -> dict[str, Watched]:
    if not has_app_context() or EXTENSION not in current_app.extensions:
        return {}
    return _epoch(current_app).watched


def _changes_revocation(instance: Any, watched: Watched, how: str) -> bool:
    if how == "deleted":
        return watched.deletes
    if how == "new":
        return watched.inserts
    state = inspect(instance)
    return any(state.attrs[name].history.has_changes() for name in watched.columns)


def _noticed_flush(session: Session, _context: Any) -> None:
    """after_flush: did this flush insert, update or delete revocation state?"""
    watched = _watched()
    if not watched or session.info.get(CHANGED):
        return
    for how, instances in (("new", session.new), ("dirty", session.dirty)):
        for instance in instances:
            found = watched.get(getattr(instance, "__tablename__", ""))
            if found is not None and _changes_revocation(instance, found, how):
                session.info[CHANGED] = True
                return
    for instance in session.deleted:
        found = watched.get(getattr(instance, "__tablename__", ""))
        if found is not None and found.deletes:
            session.info[CHANGED] = True
            return


def _noticed_statement(state: ORMExecuteState) -> None:
    """An ORM-enabled UPDATE or DELETE on a watched table changes revocation state."""
    if not (state.is_update or state.is_delete):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table is not None and table in _watched():
        state.session.info[CHANGED] = True


def _bump_before_commit(session: Session) -> None:
    """Move the counter in the transaction that changed revocation state.

    A savepoint's commit moves it too; moving it twice for one change costs nothing. The
    session is flushed first: the commit's own flush comes after this hook.
    """
    session.flush()
    if session.info.get(CHANGED):
        session.execute(BUMP, {"name": NAME})
        uow.wrote(session)


def _reread_after_commit(session: Session) -> None:
    """This process changed revocation state: read the counter again on the next check."""
    if session.in_nested_transaction():
        return
    changed = session.info.pop(CHANGED, False)
    if changed and has_app_context() and EXTENSION in current_app.extensions:
        _epoch(current_app).read_at = float("-inf")


def _forget_change(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(CHANGED, None)
