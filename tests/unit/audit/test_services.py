"""audit.services: recording with the caller's commit, no secrets, filters, pages, JSON lines."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from authserver.audit import record
from authserver.audit.models import AuditEvent
from authserver.audit.services import (
    export_jsonl,
    iso_utc,
    jsonl_lines,
    newer_than,
    parse_iso,
    query,
    without_secrets,
)
from authserver.extensions import db


def stored() -> int:
    return db.session.scalar(select(func.count(AuditEvent.id))) or 0


def add(event: str, at: datetime | None = None, **fields: object) -> AuditEvent:
    row = record(event, **fields)  # type: ignore[arg-type]
    if at is not None:
        row.created_at = at
    db.session.commit()
    return row


def test_an_event_is_stored_by_the_callers_commit_and_dropped_by_its_rollback(app: Flask) -> None:
    record("password.changed", actor="sub-1", subject="sub-1")
    db.session.rollback()
    assert stored() == 0

    record("password.changed", actor="sub-1", subject="sub-1")
    db.session.commit()
    assert stored() == 1


def test_outside_a_request_the_actor_is_the_system(app: Flask) -> None:
    row = add("admin.keys.rotated")
    assert (row.actor_type, row.actor, row.ip, row.user_agent) == ("system", None, None, None)


def test_inside_a_request_ip_and_user_agent_are_taken_and_cut_to_size(app: Flask) -> None:
    agent = "A" * 600
    with app.test_request_context(
        "/", environ_base={"REMOTE_ADDR": "192.0.2.1", "HTTP_USER_AGENT": agent}
    ):
        row = record("signin.failure", details={"reason": "x"})
    db.session.commit()
    assert row.ip == "192.0.2.1"
    assert row.user_agent == "A" * 512
    assert (row.actor_type, row.actor) == ("user", None)


def test_details_that_look_like_secrets_are_dropped_at_any_depth() -> None:
    details = {
        "reason": "wrong_password",
        "password": "hunter2",
        "Client_Secret": "s3cret",
        "access_token": "eyJ...",
        "code": "abc",
        "nested": {"refresh_token": "r", "scope": "openid"},
        "items": [{"user_code": "WDJB"}, "plain"],
    }
    clean = without_secrets(details)
    assert clean == {
        "reason": "wrong_password",
        "nested": {"scope": "openid"},
        "items": [{}, "plain"],
    }


def test_record_never_stores_secret_keys(app: Flask) -> None:
    row = add("token.issued", actor="c", actor_type="client", details={"id_token": "x", "n": 1})
    db.session.expire_all()
    assert db.session.get(AuditEvent, row.id).details == {"n": 1}


def test_query_filters_by_prefix_actor_subject_client_and_time(app: Flask) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC)
    add("signin.success", base, actor="u1", subject="u1")
    add("signin.failure", base + timedelta(hours=1), subject="u2")
    add("token.issued", base + timedelta(hours=2), actor="rp", actor_type="client", client_id="rp")
    add("signin_x", base + timedelta(hours=3))

    assert [e.event for e in query(event_prefix="signin.")] == ["signin.failure", "signin.success"]
    assert [e.event for e in query(event_prefix="token")] == ["token.issued"]
    assert [e.event for e in query(event_prefix="signin_")] == ["signin_x"]  # "_" is literal
    assert [e.event for e in query(actor="u1")] == ["signin.success"]
    assert [e.event for e in query(subject="u2")] == ["signin.failure"]
    assert [e.event for e in query(client_id="rp")] == ["token.issued"]
    window = query(since=base + timedelta(hours=1), until=base + timedelta(hours=2))
    assert [e.event for e in window] == ["token.issued", "signin.failure"]


def test_query_pages_newest_first_by_id(app: Flask) -> None:
    ids = [add(f"e.{n}").id for n in range(7)]
    first = query(limit=3)
    assert [e.id for e in first] == ids[::-1][:3]
    second = query(limit=3, before_id=first[-1].id)
    assert [e.id for e in second] == ids[::-1][3:6]
    last = query(limit=3, before_id=second[-1].id)
    assert [e.id for e in last] == [ids[0]]
    assert [e.id for e in query(limit=3, before=first[-1].id)] == [e.id for e in second]
    assert [e.id for e in newer_than(ids[4])] == ids[5:]


def test_export_writes_one_json_object_per_line_with_utc_times(app: Flask) -> None:
    at = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    add("signin.success", at, actor="u1", subject="u1", details={"amr": ["pwd"]})
    add("token.issued", at + timedelta(seconds=1), actor="rp", actor_type="client")
    add("signout", at + timedelta(seconds=2), actor="u1")

    out = io.StringIO()
    count = export_jsonl(out, event_prefix="s")
    lines = out.getvalue().splitlines()
    assert count == len(lines) == 2
    parsed = [json.loads(line) for line in lines]
    assert [item["event"] for item in parsed] == ["signout", "signin.success"]
    assert parsed[1]["created_at"] == "2025-03-04T05:06:07Z"
    assert parsed[1]["details"] == {"amr": ["pwd"]}
    assert set(parsed[0]) == {
        "id", "created_at", "event", "actor_type", "actor", "subject", "client_id", "ip",
        "user_agent", "details",
    }  # fmt: skip
    assert list(export_jsonl(event_prefix="token")) == list(jsonl_lines(event_prefix="token"))


def test_export_reads_past_one_batch(app: Flask) -> None:
    from authserver.audit import services

    for n in range(services.EXPORT_BATCH + 3):
        record(f"bulk.{n}")
    db.session.commit()
    assert sum(1 for _ in services.export(event_prefix="bulk.")) == services.EXPORT_BATCH + 3


def test_iso_times_parse_as_utc() -> None:
    assert parse_iso("2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_iso("2025-01-31T13:00:00+01:00") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_iso("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)
    assert iso_utc(datetime(2025, 1, 31, 13, tzinfo=UTC)) == "2025-01-31T13:00:00Z"
