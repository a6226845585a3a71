"""`authserver audit tail|export`: the latest events, following new ones, JSON lines out."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from authserver.audit import record
from authserver.cli import audit as audit_cli
from authserver.extensions import db


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def add(event: str, at: datetime | None = None, **fields: Any) -> None:
    row = record(event, **fields)
    if at is not None:
        row.created_at = at
    db.session.commit()


def test_tail_prints_the_last_n_oldest_first(app: Flask) -> None:
    for n in range(5):
        add(f"signin.success.{n}", actor=f"user-{n}", details={"amr": ["pwd"]})

    result = run(app, "audit", "tail", "-n", "3")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == [
        "signin.success.2", "signin.success.3", "signin.success.4",
    ]  # fmt: skip
    assert "actor=user:user-4" in lines[-1] and "amr=['pwd']" in lines[-1]


def test_tail_json_and_event_filter(app: Flask) -> None:
    add("signin.failure", subject="u1", details={"reason": "wrong_password"})
    add("token.issued", actor="rp", actor_type="client", client_id="rp")

    result = run(app, "audit", "tail", "--json", "--event", "signin")

    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["signin.failure"]
    assert events[0]["details"] == {"reason": "wrong_password"}


def test_tail_follow_prints_new_events_until_interrupted(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    add("signin.success", actor="u1")
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            add("signout", actor="u1")  # another process writes while we wait
            add("token.issued", actor="rp", actor_type="client")
            return
        raise KeyboardInterrupt  # Ctrl-C

    monkeypatch.setattr(audit_cli.time, "sleep", sleep)
    result = run(app, "audit", "tail", "--follow", "--event", "sign")

    assert result.exit_code == 0
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["signin.success", "signout"]
    assert polls == [1.0, 1.0]


def test_export_writes_json_lines_within_the_time_range(app: Flask) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    for hours in range(4):
        add(f"e.{hours}", base + timedelta(hours=hours))

    result = run(
        app, "audit", "export", "--since", "2025-01-01T01:00:00Z", "--until", "2025-01-01T02:00"
    )

    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["e.2", "e.1"]
    assert events[0]["created_at"] == "2025-01-01T02:00:00Z"


def test_export_refuses_bad_times(app: Flask) -> None:
    bad = run(app, "audit", "export", "--since", "yesterday")
    assert bad.exit_code == 2 and "ISO 8601" in bad.stderr
    backwards = run(app, "audit", "export", "--since", "2025-02-01", "--until", "2025-01-01")
    assert backwards.exit_code == 2 and "before --since" in backwards.stderr
