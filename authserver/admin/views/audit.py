"""The console's audit log: filter, page, export."""

from __future__ import annotations

from flask import Response, abort, render_template, request, stream_with_context
from flask.typing import ResponseReturnValue

from ...audit import services as audit_log
from ..forms import AuditFilterForm
from .base import bp, field_errors, require_permission

AUDIT_PER_PAGE = 50


@bp.get("/audit")
@require_permission("audit:read")
def audit() -> ResponseReturnValue:
    """The audit log, newest first, filtered, one page at a time."""
    form = AuditFilterForm(request.args)
    valid = form.validate()
    filters = form.filters() if valid else {}
    before = form.before.data if valid else None
    events = audit_log.query(**filters, limit=AUDIT_PER_PAGE + 1, before=before)
    older = events[AUDIT_PER_PAGE - 1].id if len(events) > AUDIT_PER_PAGE else None
    page = render_template(
        "admin/audit.html",
        section="audit",
        form=form,
        events=events[:AUDIT_PER_PAGE],
        older=older,
        paged=before is not None,
        filters=form.query_args() if valid else {},
        errors=field_errors(form),
    )
    return page, 200 if valid else 400


@bp.get("/audit/export")
@require_permission("audit:read")
def export_audit() -> ResponseReturnValue:
    """The filtered audit log as JSON lines (one event a line), newest first, to download."""
    form = AuditFilterForm(request.args)
    if not form.validate():
        abort(400)
    body = stream_with_context(audit_log.export_jsonl(**form.filters()))
    return Response(
        body,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-log.jsonl"'},
    )
