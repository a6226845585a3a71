"""`authserver audit`: read the audit log from a terminal, or export it as JSON lines."""

from __future__ import annotations

import time
from datetime import datetime

import click
from flask.cli import AppGroup

from ..audit.models import AuditEvent
from ..audit.services import (
    iso_utc,
    jsonl_lines,
    newer_than,
    parse_iso,
    printable,
    query,
    to_json_line,
)
from ..extensions import db

audit_cli = AppGroup("audit", help="Read and export the audit log.")

POLL_SECONDS = 1.0


class IsoTime(click.ParamType):
    """An ISO 8601 date or time; without an offset it is taken as UTC."""

    name = "ISO-8601"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:

        if isinstance(value, datetime):
            return value
        try:
            return parse_iso(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 time such as 2025-01-31T12:00:00Z", param, ctx)


@audit_cli.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events (Ctrl-C ends).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--event", "event_prefix", default=None, help='Only events starting with this, e.g. "signin".'
)
def tail_command(count: int, follow: bool, as_json: bool, event_prefix: str | None) -> None:
    """Print the latest events, oldest of them first, like tail(1)."""

    events = list(reversed(query(event_prefix=event_prefix, limit=count)))
    for row in events:
        _print(row, as_json)
    if follow:
        _follow(events[-1].id if events else _last_id(), event_prefix, as_json)


def _follow(after_id: int, event_prefix: str | None, as_json: bool) -> None:
    """Poll every POLL_SECONDS for newer events until interrupted."""

    try:
        while True:
            time.sleep(POLL_SECONDS)
            db.session.rollback()  # a fresh transaction sees events committed meanwhile
            for row in newer_than(after_id, event_prefix=event_prefix):
                _print(row, as_json)
                after_id = row.id
    except KeyboardInterrupt:
        pass


def _last_id() -> int:
    """The id of the newest event (0 when the log is empty)."""

    newest = query(limit=1)
    return newest[0].id if newest else 0


def _print(row: AuditEvent, as_json: bool) -> None:
    """One event on one line: every field escaped (`printable`), so none can start another.

    JSON lines escape control characters themselves (json.dumps with ensure_ascii).
    """

    if as_json:
        click.echo(to_json_line(row), nl=False)
        return
    actor = f"{printable(row.actor_type)}:{printable(row.actor or '-')}"
    parts = [
        iso_utc(row.created_at),
        f"{printable(row.event):<30}",
        f"actor={actor}",
        f"subject={printable(row.subject or '-')}",
        f"client={printable(row.client_id or '-')}",
        f"ip={printable(row.ip or '-')}",
    ]
    if row.details:
        parts.append(
            " ".join(f"{printable(key)}={printable(value)}" for key, value in row.details.items())
        )
    click.echo("  ".join(parts))


@audit_cli.command("export")
@click.option("--since", type=IsoTime(), default=None, help="From this time (inclusive, UTC).")
@click.option("--until", type=IsoTime(), default=None, help="Until this time (inclusive, UTC).")
@click.option("--event", "event_prefix", default=None, help="Only events starting with this.")
def export_command(
    since: datetime | None, until: datetime | None, event_prefix: str | None
) -> None:
    """Write the audit log to stdout as JSON lines, newest first: `audit export > log.jsonl`."""

    if since is not None and until is not None and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    for line in jsonl_lines(event_prefix=event_prefix, since=since, until=until):
        click.echo(line, nl=False)
