"""The admin API's audit log: pages of events, and the whole log as JSON lines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, jsonify, request, stream_with_context

from ...audit import services as audit
from ..api_schemas import (
    optional_whole,
    page_args,
    timestamp_arg,
)
from .base import bp, needs


@bp.get("/audit")
@needs("audit:read")
def list_audit_events() -> Response:
    limit, _ = page_args()
    events = audit.query(**_audit_filters(), limit=limit, before=optional_whole("before"))
    following = events[-1].id if len(events) == limit else None
    return jsonify(items=[audit.to_dict(e) for e in events], next_before=following)


@bp.get("/audit/export")
@needs("audit:read")
def export_audit_events() -> Response:
    """JSON lines (one event per line), newest first, streamed."""
    filters = _audit_filters()

    def lines() -> Iterator[str]:
        for event in audit.export(**filters):
            yield audit.to_json_line(event)

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")


def _audit_filters() -> dict[str, Any]:
    """The filters both audit endpoints take from the query string."""
    filters: dict[str, Any] = {
        name: request.args.get(name) or None for name in ("event", "actor", "subject", "client_id")
    }
    filters["since"], filters["until"] = timestamp_arg("since"), timestamp_arg("until")
    return filters
