"""The client registration endpoint (RFC 7591) and client configuration endpoint (RFC 7592).

Both exist only where `dynamic_registration` is on; elsewhere they answer 404.
Callers authenticate with bearer tokens, not cookies, so the routes are CSRF-exempt.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, request

from ..extensions import csrf
from . import registration
from .registration import RegistrationError

bp = Blueprint("registration", __name__)


@bp.before_request
def require_enabled() -> None:
    """Dynamic registration is opt-in per deployment (config.dynamic_registration)."""
    if not current_app.config["AUTHSERVER"].dynamic_registration:
        abort(404)


@bp.errorhandler(RegistrationError)
def registration_error(error: RegistrationError) -> Response:
    """RFC 7591 section 3.2.2: a JSON error body, never cached."""
    return _json(error.body(), error.status, error.headers)


@bp.post("/oauth2/register")
@csrf.exempt
def register() -> Response:
    """RFC 7591 section 3.1: register a client with an initial access token."""
    body = registration.register_client(_json_body(), _bearer_token())
    return _json(body, 201)


@bp.get("/oauth2/register/<client_id>")
def read(client_id: str) -> Response:
    """RFC 7592 section 2.1: read the client's current registration."""
    return _json(registration.read_client(client_id, _bearer_token()), 200)


@bp.put("/oauth2/register/<client_id>")
@csrf.exempt
def replace(client_id: str) -> Response:
    """RFC 7592 section 2.2: replace the client's metadata."""
    body = registration.update_client(client_id, _bearer_token(), _json_body())
    return _json(body, 200)


@bp.delete("/oauth2/register/<client_id>")
@csrf.exempt
def delete(client_id: str) -> Response:
    """RFC 7592 section 2.3: deprovision the client."""
    registration.delete_client(client_id, _bearer_token())
    return _json(None, 204)


def _bearer_token() -> str | None:
    """RFC 6750 section 2.1: the token of an `Authorization: Bearer` header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _json_body() -> Any:
    """The parsed JSON body, or None when it is missing or not JSON (refused downstream)."""
    return request.get_json(silent=True)


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    """RFC 7591 section 3.2.1: responses carry Cache-Control no-store and Pragma no-cache."""
    response = jsonify(body) if body is not None else Response(status=status)
    response.status_code = status
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
