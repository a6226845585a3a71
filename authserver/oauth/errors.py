"""Errors the specifications name that Authlib does not define."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Response, render_template

from ..core import capabilities
from .response_modes import as_flask_response, authorization_response


class UnsupportedResponseTypeError(OAuth2Error):
    """RFC 6749 section 4.1.2.1, saying which response types this server supports.

    Authlib's version garbles its own description ("response_type=The response type ...
    is not supported") and echoes the request's value, which may hold characters section
    5.2 forbids in error_description; this names only what we support.
    """

    error = "unsupported_response_type"
    description = "Unsupported response_type: this server supports only {}.".format(
        ", ".join(f"'{value}'" for value in capabilities.RESPONSE_TYPES)
    )


class InvalidTargetError(OAuth2Error):
    """RFC 8707 section 2: the requested resource is invalid or not allowed for this client."""

    error = "invalid_target"


def error_page(error: str, description: str | None, status: int = 400) -> Response:
    """An HTML error page, for errors that must not be redirected to an unverified client."""
    body = render_template(
        "errors/error.html",
        title="This sign-in request cannot be completed",
        message=description or "The request is not valid.",
        status=status,
        error=error,
    )
    return Response(body, status=status, mimetype="text/html")


def redirect_error(error: OAuth2Error, mode: str = capabilities.DEFAULT_RESPONSE_MODE) -> Response:
    """RFC 6749 section 4.1.2.1: to the verified redirect_uri with `state` and `iss`, by the
    request's response mode (oauth/response_modes.py); without one, an error page."""
    if not error.redirect_uri:
        return error_page(error.error, error.description)
    return as_flask_response(authorization_response(error.redirect_uri, error.get_body(), mode))
