"""Security headers on every response, safe error pages and rate limits."""

from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import cors, limits, ratelimit
from .cors import OriginLookup
from .errors import handle_http_exception, handle_unexpected_exception
from .headers import add_security_headers


def init_app(app: Flask, *, is_registered_origin: OriginLookup) -> None:
    """Add the security headers hook, CORS, the error handlers and the rate limits.

    `is_registered_origin` answers whether a client registered a web origin (CORS);
    it lives with the clients, a layer above this one.
    """
    app.after_request(add_security_headers)
    cors.init_app(app, is_registered_origin)
    limits.init_app(app)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_exception)
    ratelimit.init_app(app)


def check_app(app: Flask) -> None:
    """Once every blueprint is registered: refuse to start with an unclassified endpoint."""
    ratelimit.check_endpoint_classes(app)
