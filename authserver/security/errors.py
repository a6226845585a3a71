"""Error responses: the HTML error page for people, JSON for API clients.

OAuth endpoints answer errors as JSON `{"error", "error_description"}`
(RFC 6749 section 5.2); so does anything under /oauth2/, /userinfo and
/.well-known/, and any request that prefers JSON. Nothing ever shows a traceback.
A database that is down or a dropped connection is a 503 with Retry-After, not a 500.
"""

from __future__ import annotations

import logging

from flask import Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, InternalServerError

from ..extensions import db

log = logging.getLogger(__name__)

JSON_PATH_PREFIXES = ("/oauth2/", "/userinfo", "/.well-known/", "/admin/api/", "/healthz")

# Seconds a client is asked to wait when the database is unreachable.
DATABASE_RETRY_AFTER = 5

# Error codes for JSON bodies; RFC 6749 section 5.2 names where one applies.
_ERROR_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "invalid_request",
    415: "invalid_request",
    429: "too_many_requests",
    500: "server_error",
    503: "temporarily_unavailable",
}

# What a person reads, instead of Werkzeug's generic sentences.
_TITLES = {
    400: "Bad request",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}
_MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to see this page.",
    404: "There is no page at this address.",
    405: "This page cannot be used that way.",
    413: "The request sent to the server was too large.",
    429: "Too many attempts. Wait a moment and try again.",
    500: "An unexpected error happened on our side. Please try again later.",
    503: "The service is busy or under maintenance. Please try again in a moment.",
}
CSRF_MESSAGE = (
    "This form has expired or did not come from this site. Go back, reload the page and try again."
)


def wants_json() -> bool:
    """True for API paths and for clients that prefer JSON to HTML."""
    if request.path.startswith(JSON_PATH_PREFIXES):
        return True
    accept = request.accept_mimetypes
    return accept.best_match(["text/html", "application/json"]) == "application/json" and (
        accept["application/json"] > accept["text/html"]
    )


def handle_http_exception(error: HTTPException) -> Response:
    """Render a Werkzeug or Flask-WTF HTTP error as JSON or as the error page."""
    original = getattr(error, "original_exception", None)
    if isinstance(error, InternalServerError) and original and is_database_unavailable(original):
        return handle_database_unavailable(original)  # raised outside a view, e.g. a hook
    status = error.code or 500
    error_code = None
    if isinstance(error, CSRFError):
        message, error_code = CSRF_MESSAGE, "csrf"
    elif error.description and error.description != type(error).description:
        message = error.description  # an explicit abort(..., description)
    else:
        message = _MESSAGES.get(status, error.description or "")
    response = _error_response(status, error.name, message, error_code)
    # Keep protocol headers such as Allow (405) and WWW-Authenticate (401).
    for name, value in error.get_headers():
        if name.lower() not in ("content-type", "content-length"):
            response.headers.add(name, value)
    return response


def handle_unexpected_exception(error: Exception) -> Response:
    """Log the bug with its traceback; show a plain 500 without details."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    if is_database_unavailable(error):
        return handle_database_unavailable(error)
    log.exception("unhandled exception on %s %s", request.method, request.path)
    _rollback()
    return _error_response(500, InternalServerError().name, _MESSAGES[500])


def is_database_unavailable(error: BaseException) -> bool:
    """A lost or refused database connection (or an exhausted pool), not a bug in a query."""
    if isinstance(error, (OperationalError, InterfaceError, PoolTimeoutError)):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - SQLite-only installs
        return False
    return isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError))


def handle_database_unavailable(error: Exception) -> Response:
    """503 with Retry-After while the database is unreachable; one log line, no traceback.

    The request's transaction was not committed, so nothing it did is kept and the
    client may retry it (RFC 6749 section 5.2 `temporarily_unavailable` for JSON).
    """
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    log.warning(
        "database unavailable on %s %s: %s: %s",
        request.method,
        request.path,
        type(error).__name__,
        reason[0] if reason else "",
    )
    _rollback()
    response = _error_response(503, "Service Unavailable", _MESSAGES[503])
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def _rollback() -> None:
    """Leave the database session usable after a failure, so the error page can render."""
    try:
        db.session.rollback()
    except SQLAlchemyError as exc:
        if is_database_unavailable(exc):
            log.warning("rollback failed: the database connection is gone")
        else:
            log.exception("rollback after an unhandled exception failed")


def _error_response(
    status: int, name: str, message: str, page_error: str | None = None
) -> Response:
    """The JSON or HTML body for an error with this status."""
    if wants_json():
        error_code = _ERROR_CODES.get(status) or name.lower().replace(" ", "_")
        response = jsonify(error=error_code, error_description=message)
    else:
        title = _TITLES.get(status, name)
        body = render_template(
            "errors/error.html", title=title, message=message, status=status, error=page_error
        )
        response = Response(body, mimetype="text/html")
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
