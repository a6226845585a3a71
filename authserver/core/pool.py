"""Pooled database connections: checked for life only when they sat idle.

SQLAlchemy's `pool_pre_ping` pings on every checkout: one more round trip to
PostgreSQL on every request that touches the database, about a tenth of a
millisecond of CPU each time on the hot paths (bench/). A connection checked in a
moment ago is as alive as the ping would prove, so, as HikariCP's alive-bypass
window does, only a connection idle for `IDLE_PING_SECONDS` or more is pinged;
a dead one is replaced before the request sees it.

A connection the database drops while in steady use fails the statement that
meets it: the error handlers answer 503 (security/errors.py), SQLAlchemy
invalidates the pool, and the next request gets a fresh connection
(tests/functional/test_database_faults.py cuts every connection under load).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError

# Connections used within this many seconds are not pinged on checkout.
IDLE_PING_SECONDS = 1.0
_CHECKED_IN_AT = "authserver.checked_in_at"


def ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection on checkout only when it was idle `IDLE_PING_SECONDS`."""
    dialect = engine.dialect

    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get(_CHECKED_IN_AT)
        if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards this connection and checks out another.
            raise DisconnectionError("idle connection failed its ping") from error

    if not event.contains(engine, "checkout", checkout):
        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", _checked_in)


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()
