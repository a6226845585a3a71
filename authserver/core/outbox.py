"""The machinery of a transactional outbox: claims, retries with backoff, and a worker thread.

An outbox table holds work written in the transaction of the change that caused it (a
mail, a back-channel logout token) and done later, outside any request. Every outbox
table has the same columns for this: `id`, `status` ("pending" until done), `attempts`,
`next_attempt_at` and `locked_until`. The mail outbox (mail/sender.py) and the
back-channel logout outbox (oidc/backchannel.py) both use these functions, so claiming,
leasing, backing off and giving up work one way.

Several processes and instances may work one table at once and never do one row twice:
a worker *claims* due rows with one conditional UPDATE (pending, due, and not held by
another worker's unexpired claim; on PostgreSQL the candidate rows are read with SELECT
... FOR UPDATE SKIP LOCKED, so two workers do not even wait for each other), does the
work with no transaction open, and marks each row done or schedules a retry. A claim
runs out after its lease, so the rows of a worker that died are picked up by another.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..extensions import precise_utcnow

PENDING = "pending"


def retry_delay(attempts: int, first: timedelta, maximum: timedelta) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from `first`, capped."""
    return min(first * 2 ** max(attempts - 1, 0), maximum)


def claim(session: Session, model: Any, limit: int, lease_for: timedelta) -> tuple[list[int], Any]:
    """Take up to `limit` due rows of `model` for `lease_for`; (their ids, the lease).

    Each claim counts as an attempt. Commits the claim.
    """
    now = precise_utcnow()
    claimable = (
        model.status == PENDING,
        model.next_attempt_at <= now,
        or_(model.locked_until.is_(None), model.locked_until <= now),
    )
    # SKIP LOCKED (PostgreSQL; SQLite has no row locks and ignores it): rows another worker
    # is claiming right now are left to it instead of waited for.
    candidates = list(
        session.scalars(
            select(model.id)
            .where(*claimable)
            .order_by(model.next_attempt_at, model.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not candidates:
        session.rollback()
        return [], None
    lease = now + lease_for
    claimed = session.scalars(
        update(model)
        .where(model.id.in_(candidates), *claimable)
        .values(locked_until=lease, attempts=model.attempts + 1)
        .returning(model.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.commit()
    return sorted(claimed), lease


def finish(
    session: Session, model: Any, row_id: int, lease: Any, status: str, values: dict[str, Any]
) -> bool:
    """Set the row's `status` and `values` and release it, if our claim still holds it; commits.

    False when the claim ran out and another worker holds the row now.
    """
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.locked_until == lease)
        .values(status=status, locked_until=None, **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


class Worker:
    """One app's background thread: started lazily, woken by nudges, stopped with the app.

    It holds its app weakly, so a thread never outlives its app; `close()` stops it for
    good. `work(halt)` runs in an app context whenever the thread wakes (a nudge, or
    every `poll_seconds`) and should return when nothing is due or `halt` is set.
    """

    def __init__(
        self,
        app: Flask,
        work: Callable[[threading.Event], object],
        *,
        name: str,
        label: str,
        poll_seconds: float,
        log: logging.Logger,
    ) -> None:
        self._app = weakref.ref(app)
        self._work = work
        self._name = name
        self._label = label
        self._poll_seconds = poll_seconds
        self._log = log
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def ensure_started(self) -> None:
        """Start the thread unless it runs (cheap enough for every request)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and not self._halt.is_set():
            return
        with self._lock:
            thread = self._thread
            if self._closed:
                return
            if thread is not None and thread.is_alive() and not self._halt.is_set():
                return
            # None yet, or it died, or it was halted (it ends after its current row;
            # claims keep the two from doing anything twice).
            self._halt = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._halt,), name=self._name, daemon=True
            )
            self._thread.start()

    def nudge(self) -> None:
        """Work soon: rows were just committed."""
        self.ensure_started()
        self._wake.set()

    def halt(self) -> None:
        """Ask the running thread to end after its current row (a later nudge restarts)."""
        self._halt.set()
        self._wake.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread for good and wait for it (tests stop every app they made)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self.halt()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, halt: threading.Event) -> None:
        """The loop: work, then sleep until nudged or `poll_seconds` pass.

        Never raises: an exception escaping a thread would only be printed, and the
        work would stop until the process restarts.
        """
        while not halt.is_set():
            self._wake.clear()
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    self._work(halt)
            except Exception:
                self._log.exception(
                    "the %s failed; it tries again in %.0f s", self._label, self._poll_seconds
                )
            del app
            self._wake.wait(self._poll_seconds)
