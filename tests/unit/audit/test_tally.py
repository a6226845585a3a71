"""audit.tally: the first frequent event is stored at once, the rest as one counted event."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.audit import tally
from authserver.audit.models import AuditEvent
from authserver.audit.tally import flush_all, record_frequent
from authserver.extensions import db

KEY = ("svc", "read", "192.0.2.1")
FIELDS: dict[str, Any] = {
    "actor": "svc",
    "actor_type": "client",
    "client_id": "svc",
    "details": {"grant_type": "client_credentials", "scope": "read"},
}


def stored() -> list[AuditEvent]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def issue(app: Flask, times: int = 1) -> None:
    with app.test_request_context(
        environ_base={"REMOTE_ADDR": "192.0.2.1", "HTTP_USER_AGENT": "svc/1.0"}
    ):
        for _ in range(times):
            record_frequent("token.issued", KEY, **FIELDS)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(tally.time, "monotonic", fake)
    return fake


def test_the_first_event_of_a_window_is_committed_at_once(app: Flask, clock: Clock) -> None:
    issue(app)

    [event] = stored()
    assert (event.event, event.actor, event.ip, event.user_agent) == (
        "token.issued",
        "svc",
        "192.0.2.1",
        "svc/1.0",
    )
    assert "count" not in event.details


def test_later_events_in_the_window_are_counted_not_written(app: Flask, clock: Clock) -> None:
    issue(app, times=5)

    assert len(stored()) == 1


def test_the_count_is_written_with_the_first_event_after_the_window(
    app: Flask, clock: Clock
) -> None:
    issue(app, times=4)
    clock.now += tally.WINDOW_SECONDS

    issue(app)

    first, counted, reopened = stored()
    assert counted.details["count"] == 3
    assert counted.details["grant_type"] == "client_credentials"
    assert counted.details["first"] <= counted.details["last"]
    assert (counted.ip, counted.user_agent) == ("192.0.2.1", "svc/1.0")
    assert "count" not in first.details and "count" not in reopened.details
    # Every event is accounted for: 1 + 3 in the first window, 1 in the second.
    total = sum(event.details.get("count", 1) for event in (first, counted, reopened))
    assert total == 5


def test_keys_are_counted_apart(app: Flask, clock: Clock) -> None:
    issue(app, times=2)
    with app.test_request_context():
        record_frequent("token.issued", ("other", "read", None), **{**FIELDS, "actor": "other"})

    assert [event.actor for event in stored()] == ["svc", "other"]


def test_flush_all_writes_what_was_counted_and_forgets_it(app: Flask, clock: Clock) -> None:
    issue(app, times=3)

    flush_all(app)
    flush_all(app)

    events = stored()
    assert [event.details.get("count") for event in events] == [None, 2]
    assert app.extensions[tally.TALLIES] == {}


def test_flush_all_survives_a_database_that_is_gone(
    app: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    issue(app, times=2)

    def broken() -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(db.session, "commit", broken)
    flush_all(app)

    assert "counted events were not written at exit" in caplog.text
