"""Security headers on every response, safe error pages and rate limits."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import cors, limits, ratelimit
from .errors import handle_http_exception, handle_unexpected_exception
from .headers import add_security_headers


def init_app(app: Flask) -> None:
    """Add the security headers hook, the error handlers and the rate limits."""
    app.after_request(add_security_headers)
    cors.init_app(app)
    limits.init_app(app)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_exception)
    ratelimit.init_app(app)
