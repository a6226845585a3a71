"""Frequent events that change nothing else: the first is recorded, the rest are counted.

A service may ask for thousands of client_credentials tokens a second; such a token is
self-contained (nothing is stored), so one audit row per token would be the only write
on the hot path. Instead, per process and per (event, client, scope, IP): the first
event of each window is recorded and committed at once, and the events that follow
within `WINDOW_SECONDS` are counted and recorded as one event with
`details["count"]`, written with the next event of that key after the window closes
or, for what is left, when the worker stops (`flush_all`, registered in wsgi.py).
The sum of the counts is the number of events; a worker killed outright loses at
most one window of counts, never the first event.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app

from ..extensions import db, utcnow
from .services import record

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60.0
# Beyond this many open windows in one process, all are written out and started afresh.
MAX_KEYS = 10_000
TALLIES = "authserver.audit.tallies"


@dataclass
class Tally:
    """One key's open window: when it started, and the events counted since the first."""

    started: float
    fields: dict[str, Any]
    origin: tuple[str | None, str | None]
    count: int = 0
    first_counted: datetime | None = None
    last_counted: datetime | None = None


def record_frequent(event: str, key: tuple[Any, ...], **fields: Any) -> None:
    """Record `event` now if it opens a window for `key`, else count it; commits what it writes."""
    tallies: dict[tuple[Any, ...], Tally] = current_app.extensions.setdefault(TALLIES, {})
    now = time.monotonic()
    tally = tallies.get((event, *key))
    if tally is not None and now - tally.started < WINDOW_SECONDS:
        stamp = utcnow()
        tally.count += 1
        tally.first_counted = tally.first_counted or stamp
        tally.last_counted = stamp
        return
    if tally is not None:
        _record_counted(event, tally)
    if len(tallies) >= MAX_KEYS:
        flush(tallies)
    row = record(event, **fields)
    origin = (row.ip, row.user_agent)  # read before the commit expires the row
    db.session.commit()
    tallies[(event, *key)] = Tally(started=now, fields=fields, origin=origin)


def flush(tallies: dict[tuple[Any, ...], Tally]) -> None:
    """Write every window's count and forget them all (the caller has an app context)."""
    for (event, *_), tally in list(tallies.items()):
        _record_counted(event, tally)
    tallies.clear()
    db.session.commit()


def flush_all(app: Flask) -> None:
    """At worker exit: write what was counted and not yet recorded; never raises."""
    tallies = app.extensions.get(TALLIES)
    if not tallies:
        return
    try:
        with app.app_context():
            flush(tallies)
    except Exception:  # the database may be gone at exit; say so, do not crash the exit
        log.exception("audit: %d counted events were not written at exit", len(tallies))


def _record_counted(event: str, tally: Tally) -> None:
    """The events counted after a window's first one, as one event (nothing when none)."""
    if not tally.count:
        return
    details = dict(tally.fields.get("details") or {})
    details["count"] = tally.count
    details["first"] = tally.first_counted.isoformat() if tally.first_counted else None
    details["last"] = tally.last_counted.isoformat() if tally.last_counted else None
    record(event, **{**tally.fields, "details": details}, origin=tally.origin)
