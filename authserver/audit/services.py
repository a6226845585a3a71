"""Recording, querying and exporting the audit log.

`record` adds an event to the caller's database session, so the event is stored by
the same commit as the action it describes, and vanishes with it on a rollback.
Details never hold secrets: keys that look like one are dropped before storing.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any, overload

from flask import has_request_context, request
from sqlalchemy import Select, select

from ..extensions import db, utcnow
from .actor import Actor, request_actor
from .models import AuditEvent

log = logging.getLogger(__name__)

# A details key containing any of these words could carry a credential.
SECRET_KEY_WORDS = ("password", "token", "secret", "code")
MAX_LIMIT = 1000
EXPORT_BATCH = 500
_MAX_TEXT = 1000
# Column widths of audit_events (models.py).
_WIDTHS = {"event": 64, "actor": 320, "subject": 320, "client_id": 64, "ip": 64, "ua": 512}


def record(
    event: str,
    *,
    actor: Actor | str | None = None,
    actor_type: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
    origin: tuple[str | None, str | None] | None = None,
) -> AuditEvent:
    """Add an event to the session (the caller's commit stores it) and return it.

    `actor` is an `Actor`, or a name with its `actor_type`. Inside a request the IP and
    user agent come from it, and a missing actor is the request's (audit.actor: the
    signed-in person unless a view declared another); outside one (CLI, jobs) without
    an actor, the actor type is "system". Give `origin` (IP, user agent) for an event
    recorded after its request.
    """
    ip, user_agent = origin if origin is not None else _request_origin()
    name, kind = _named(actor, actor_type)
    row = AuditEvent(
        created_at=utcnow(),
        event=event[: _WIDTHS["event"]],
        actor_type=kind or _default_actor_type(name),
        actor=_clip(name, _WIDTHS["actor"]),
        subject=_clip(subject, _WIDTHS["subject"]),
        client_id=_clip(client_id, _WIDTHS["client_id"]),
        ip=ip,
        user_agent=user_agent,
        details=without_secrets(details or {}, event),
    )
    db.session.add(row)
    return row


def record_and_commit(event: str, **fields: Any) -> AuditEvent:
    """`record`, then commit: for code paths that change nothing else (e.g. a failed sign-in)."""
    row = record(event, **fields)
    db.session.commit()
    return row


# Control characters (C0, DEL, C1), format characters (bidi overrides, zero-width) and the
# Unicode line and paragraph separators: shown escaped wherever the log is read.
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def printable(value: Any) -> str:
    """`value` as text with every control or invisible character escaped (\\n, \\x1b, \\u202e).

    Whatever someone managed to get into an event (a typed address, a user agent), a
    terminal (`authserver audit tail`) or the console shows it as inert text: no forged
    lines, no escape sequences, no text direction tricks. A backslash is doubled, so an
    escape cannot be faked either.
    """
    text = "" if value is None else str(value)
    return "".join(_escaped(char) for char in text)


_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if unicodedata.category(char) not in _UNPRINTABLE_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def without_secrets(details: dict[str, Any], event: str = "") -> dict[str, Any]:
    """A JSON-safe copy of `details` with every key that looks like a secret dropped."""
    clean: dict[str, Any] = {}
    for key, value in details.items():
        name = str(key)
        if any(word in name.lower() for word in SECRET_KEY_WORDS):
            log.warning("audit event %s: dropped detail %r, it may hold a secret", event, name)
            continue
        clean[name] = _clean_value(value, event)
    return clean


def _clean_value(value: Any, event: str) -> Any:
    """Nested dicts are cleaned too; long strings are cut; other values become text."""
    if isinstance(value, dict):
        return without_secrets(value, event)
    if isinstance(value, list | tuple | set):
        return [_clean_value(item, event) for item in value]
    if isinstance(value, str):
        return value[:_MAX_TEXT]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:_MAX_TEXT]


def _request_origin() -> tuple[str | None, str | None]:
    """(IP address, user agent) of the current request, or (None, None) outside one."""
    if not has_request_context():
        return None, None
    ip = _clip(request.remote_addr, _WIDTHS["ip"])
    return ip, _clip(request.user_agent.string, _WIDTHS["ua"])


def _named(actor: Actor | str | None, actor_type: str | None) -> tuple[str | None, str | None]:
    """(actor, actor type) as stored: from an Actor, as given, or the request's actor."""
    if isinstance(actor, Actor):
        return actor.id, actor.type
    if actor is None and actor_type is None:
        who = request_actor()
        if who is not None:
            return who.id, who.type
    return actor, actor_type


def _default_actor_type(actor: str | None) -> str:
    """A named actor or a browser request is a person ("user"); anything else the system."""
    return "user" if actor is not None or has_request_context() else "system"


def _clip(value: str | None, width: int) -> str | None:
    """`value` cut to the column width, without NUL (PostgreSQL text cannot hold it)."""
    value = value.replace("\x00", "") if value else value
    return value[:width] if value else None


# Reading the log


def query(
    event_prefix: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
    *,
    event: str | None = None,
    before: int | None = None,
) -> list[AuditEvent]:
    """Events matching every filter given, newest first, at most `limit` of them.

    `since` and `until` are inclusive. Pages follow by id (keyset pagination): pass
    the last id of a page as `before_id` for the next. `event` and `before` are
    aliases of `event_prefix` and `before_id`.
    """
    statement = _filtered(
        event_prefix or event, actor, subject, client_id, since, until, before_id or before
    )
    limit = max(1, min(int(limit), MAX_LIMIT))
    return list(db.session.scalars(statement.order_by(AuditEvent.id.desc()).limit(limit)))


def newer_than(
    after_id: int, *, event_prefix: str | None = None, limit: int = MAX_LIMIT
) -> list[AuditEvent]:
    """Events with an id above `after_id`, oldest first (for following the log)."""
    statement = _filtered(event_prefix, None, None, None, None, None, None)
    statement = statement.where(AuditEvent.id > after_id).order_by(AuditEvent.id)
    return list(db.session.scalars(statement.limit(max(1, min(int(limit), MAX_LIMIT)))))


def export(
    event_prefix: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    client_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    event: str | None = None,
) -> Iterator[AuditEvent]:
    """Every matching event, newest first, read in batches (memory stays flat)."""
    before_id: int | None = None
    while True:
        batch = query(
            event_prefix or event, actor, subject, client_id, since, until, EXPORT_BATCH, before_id
        )
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        before_id = batch[-1].id


def jsonl_lines(**filters: Any) -> Iterator[str]:
    """The matching events (filters as for `export`) as JSON lines, newest first."""
    for row in export(**filters):
        yield to_json_line(row)


@overload
def export_jsonl(out: IO[str], **filters: Any) -> int: ...
@overload
def export_jsonl(out: None = None, **filters: Any) -> Iterator[str]: ...
def export_jsonl(out: IO[str] | None = None, **filters: Any) -> int | Iterator[str]:
    """Write the matching events to `out` as JSON lines and return how many.

    Without `out`, return the lines instead (for a streamed HTTP response).
    """
    lines = jsonl_lines(**filters)
    if out is None:
        return lines
    count = 0
    for line in lines:
        out.write(line)
        count += 1
    return count


def to_dict(row: AuditEvent) -> dict[str, Any]:
    """The event as a JSON object; the time in ISO 8601 UTC ("...Z")."""
    return {
        "id": row.id,
        "created_at": iso_utc(row.created_at),
        "event": row.event,
        "actor_type": row.actor_type,
        "actor": row.actor,
        "subject": row.subject,
        "client_id": row.client_id,
        "ip": row.ip,
        "user_agent": row.user_agent,
        "details": row.details or {},
    }


def to_json_line(row: AuditEvent) -> str:
    """One compact JSON line, newline-terminated."""
    return json.dumps(to_dict(row), separators=(",", ":"), sort_keys=False) + "\n"


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second: 2025-01-31T12:00:00Z."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """An ISO 8601 date or time as tz-aware UTC; a time without an offset is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _filtered(
    event_prefix: str | None,
    actor: str | None,
    subject: str | None,
    client_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
) -> Select[tuple[AuditEvent]]:
    """The SELECT with a WHERE clause for each filter given."""
    statement = select(AuditEvent)
    if event_prefix:
        pattern = _escape_like(event_prefix) + "%"
        statement = statement.where(AuditEvent.event.like(pattern, escape="\\"))
    for column, value in (
        (AuditEvent.actor, actor),
        (AuditEvent.subject, subject),
        (AuditEvent.client_id, client_id),
    ):
        if value:
            statement = statement.where(column == value)
    if since is not None:
        statement = statement.where(AuditEvent.created_at >= since)
    if until is not None:
        statement = statement.where(AuditEvent.created_at <= until)
    if before_id is not None:
        statement = statement.where(AuditEvent.id < before_id)
    return statement


def _escape_like(text: str) -> str:
    """Make `%`, `_` and `\\` match themselves in a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
