"""One unit of work per request and per CLI command, committed at the edge.

Services change `db.session` and return; the edge decides (STYLE.md "Transactions"):

- a request whose session holds writes is committed in `after_request` when the response
  is not an error (status below 400), and rolled back otherwise; an exception that escapes
  the view rolls it back in `teardown_request`;
- a CLI command is committed when it returns and rolled back when it raises
  (`in_unit_of_work`, applied to every command of `app.cli` by `init_app`);
- a write that must outlive an error answer (a failed sign-in's audit event, a revoked
  token family after a replayed refresh token) calls `keep()` first.

A request that wrote nothing costs nothing here: no commit, no rollback, no round trip
beyond the one the session's own close pays today. A request known to only read
(`read_only`: userinfo, introspection) runs its statements without a transaction at
all, which saves PostgreSQL's BEGIN and ROLLBACK round trips; a write there is a bug
and raises. Writes are noticed with session events
(a flush, or an ORM INSERT/UPDATE/DELETE statement) and cleared by a commit or rollback,
so code that still commits by itself keeps working: its request simply has nothing left
to commit at the edge. A statement run on the session's connection passes no session
event; its caller reports it with `wrote` (`core.once.run_once` does).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from flask import Flask, Response, current_app
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import ORMExecuteState, Session

from ..extensions import db

F = TypeVar("F", bound=Callable[..., Any])

# Keys of Session.info.
WRITES = "authserver.uow.writes"
KEEP = "authserver.uow.keep"
READ_ONLY = "authserver.uow.read_only"
# The app's engine in autocommit (same pool), for read-only requests.
AUTOCOMMIT_ENGINE = "authserver.uow.autocommit_engine"
# Marks a CLI callback already wrapped (create_app runs once per app, commands are shared).
_WRAPPED = "__authserver_unit_of_work__"


def init_app(app: Flask) -> None:
    """Commit or roll back each request's unit of work at its edge.

    Call it before any other extension registers an `after_request` hook: Flask runs
    them in reverse order, so this one runs last, once every other hook has run.
    `wrap_commands` does the same for CLI commands, once they are all registered.
    """
    app.after_request(_finish_request)
    app.teardown_request(_abandon_request)
    # On the class of db.session only: sessions of their own (the mail sender's, the key
    # ring's) are units of work of their own.
    if not event.contains(db.session, "after_flush", _noticed_flush):
        event.listen(db.session, "before_flush", _refuse_read_only_flush)
        event.listen(db.session, "after_flush", _noticed_flush)
        event.listen(db.session, "do_orm_execute", _noticed_statement)
        event.listen(db.session, "after_commit", _forget)
        event.listen(db.session, "after_rollback", _forget)


def keep() -> None:
    """Commit this unit of work even when its request ends in an error response."""
    db.session.info[KEEP] = True
    db.session.info[WRITES] = True


def read_only() -> None:
    """This request only reads: run its statements in autocommit, outside a transaction.

    Call it before the request's first statement. Nothing is checked out until a
    statement needs it (a request answered from caches costs nothing here). A session
    already in a transaction, or joined to a connection of its own (the test suite's
    rolled-back transaction), is left as it is. Each statement sees committed rows only.
    """
    session = db.session()
    if session.in_transaction() or isinstance(session.get_bind(), Connection):
        return
    session.info[READ_ONLY] = True
    autocommit: Engine | None = current_app.extensions.get(AUTOCOMMIT_ENGINE)
    if autocommit is None:
        autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        current_app.extensions[AUTOCOMMIT_ENGINE] = autocommit
    session.bind = autocommit


def wrote(session: Session) -> None:
    """Report a write the session's events do not see (a statement on its connection)."""
    session.info[WRITES] = True


def has_writes(session: Session) -> bool:
    """True when the session flushed, executed or holds a change not yet committed."""
    if session.info.get(WRITES):
        return True
    return bool(session.new or session.deleted or session.dirty)


def finish(session: Session, *, success: bool) -> None:
    """End a unit of work: commit its writes on success (or when kept), else roll back.

    A session without writes is left alone: its transaction, if any, only read.
    """
    if not has_writes(session):
        return
    if success or session.info.get(KEEP):
        session.commit()
    else:
        session.rollback()


def in_unit_of_work(callback: F) -> F:
    """Decorate a CLI command: commit when it returns, roll back when it raises."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = callback(*args, **kwargs)
        except BaseException as error:
            _finish_current(success=_is_clean_exit(error))
            raise
        _finish_current(success=True)
        return result

    setattr(run, _WRAPPED, True)
    return run  # type: ignore[return-value]


def _finish_request(response: Response) -> Response:
    """after_request: the response is decided; commit before it is sent, or roll back."""
    if db.session.registry.has():
        finish(db.session(), success=response.status_code < 400)
    return response


def _abandon_request(error: BaseException | None) -> None:
    """teardown_request: an exception escaped the view, so nothing of it is kept."""
    if error is not None and db.session.registry.has():
        session = db.session()
        if has_writes(session):
            session.rollback()


def _is_clean_exit(error: BaseException) -> bool:
    """An exit with status 0 (`ctx.exit()`, `sys.exit(0)`) ends a command that succeeded."""
    if isinstance(error, click.exceptions.Exit):
        return error.exit_code == 0
    return isinstance(error, SystemExit) and not error.code


def _finish_current(*, success: bool) -> None:
    """Finish the current app's session, when a command opened one."""
    if current_app and db.session.registry.has():
        finish(db.session(), success=success)


def wrap_commands(group: click.Group) -> None:
    """Put every command of the group (and of its subgroups) in a unit of work, once.

    The command objects are module-level and shared by every app built in a process,
    so a callback already wrapped is left as it is.
    """
    for command in group.commands.values():
        if isinstance(command, click.Group):
            wrap_commands(command)
        elif command.callback is not None and not getattr(command.callback, _WRAPPED, False):
            command.callback = in_unit_of_work(command.callback)


def _refuse_read_only_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        _check_may_write(session)


def _noticed_flush(session: Session, _context: Any) -> None:
    session.info[WRITES] = True


def _noticed_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _check_may_write(state.session)
        state.session.info[WRITES] = True


def _check_may_write(session: Session) -> None:
    """In autocommit a write would be committed at once, whatever the response."""
    if session.info.get(READ_ONLY):
        raise RuntimeError("a request declared read-only (core.uow.read_only) wrote")


def _forget(session: Session) -> None:
    """After the outermost commit or rollback (a savepoint's leaves the unit of work open)."""
    if session.in_nested_transaction():
        return
    session.info.pop(WRITES, None)
    session.info.pop(KEEP, None)
    session.info.pop(READ_ONLY, None)
