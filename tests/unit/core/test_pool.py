"""Pooled connections are pinged only after sitting idle (core/pool.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from authserver.core import pool

PINGS: dict[Engine, list[Any]] = {}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine of our own on the test database, pool of one, pings counted in PINGS."""
    made = create_engine(database_url, pool_size=1, max_overflow=0)
    pool.ping_idle_connections(made)
    pings: list[Any] = []
    real_ping = made.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(real_ping(dbapi_connection))

    made.dialect.do_ping = counted  # type: ignore[method-assign]
    PINGS[made] = pings
    yield made
    PINGS.pop(made)
    made.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def age_pooled_connections(engine: Engine) -> None:
    """As if every pooled connection had been checked in long ago."""
    for record in list(engine.pool._pool.queue):  # type: ignore[attr-defined]
        record.info["authserver.checked_in_at"] -= pool.IDLE_PING_SECONDS + 1


def test_a_connection_in_steady_use_is_not_pinged(engine: Engine) -> None:
    for _ in range(5):
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert PINGS[engine] == []


def test_a_connection_idle_past_the_window_is_pinged_once(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    age_pooled_connections(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert len(PINGS[engine]) == 1


@pytest.mark.postgres
def test_an_idle_connection_the_server_dropped_is_replaced_before_use(engine: Engine) -> None:
    dropped = backend_pid(engine)
    admin = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
    admin.dispose()
    age_pooled_connections(engine)

    # The request that comes next never sees the dead connection.
    assert backend_pid(engine) != dropped
