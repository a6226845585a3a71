"""The admin API's blueprints and the pipeline around every view: who calls, what they may
do, how errors answer; and the OpenAPI document.

Every request carries `Authorization: Bearer <access token>` with the `admin` scope
(api_auth.py); each endpoint then needs one permission (`needs`), and the services
refuse any change above the caller's ceiling (roles/ceiling.py) with 403.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ...audit.actor import Actor, act_as, clear_actor
from ...clients.metadata import ClientError
from ...extensions import csrf, db
from ...roles.ceiling import PrivilegeError
from ...roles.services import RoleError
from ..api_auth import ApiError, Principal, authenticate
from ..services.base import AdminError

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api/v1")
docs_bp = Blueprint("admin_api_docs", __name__, url_prefix="/admin/api")
csrf.exempt(bp)  # bearer tokens, not cookies: no cross-site request can carry one

log = logging.getLogger(__name__)
OPENAPI_PATH = Path(__file__).parent.parent / "openapi.json"
View = TypeVar("View", bound=Callable[..., Any])


@bp.before_request
def require_admin() -> None:
    """Authenticate the bearer token and remember who acts (the audit log names them)."""
    caller = authenticate(request.headers.get("Authorization"))
    g.admin_principal = caller
    act_as(caller.actor)


def needs(permission: str) -> Callable[[View], View]:
    """Let the view run only for callers holding `permission`."""

    def decorate(view: View) -> View:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            caller: Principal = g.admin_principal
            if not caller.can(permission):
                raise ApiError(403, "forbidden", f"this needs the {permission} permission")
            return view(*args, **kwargs)

        checked.permission = permission  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return decorate


@bp.teardown_request
def forget_caller(_error: BaseException | None) -> None:
    """The caller belongs to one request only."""
    g.pop("admin_principal", None)
    clear_actor()


@bp.after_request
def no_store(response: Response) -> Response:
    """RFC 9111 section 5.2.2.5: admin answers hold personal data; never cache them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(ApiError)
def api_error(error: ApiError) -> tuple[Response, int, dict[str, str]]:
    return _error(error.status, error.error, error.description), error.status, error.headers


@bp.errorhandler(PrivilegeError)
def above_ceiling(error: PrivilegeError) -> tuple[Response, int]:
    """The change would give or touch more than the caller holds (roles.ceiling): 403."""
    return _error(403, "forbidden", str(error)), 403


@bp.errorhandler(AdminError)
@bp.errorhandler(ClientError)
@bp.errorhandler(RoleError)
def refused(error: ValueError) -> tuple[Response, int]:
    """Service rules refused a value: 422 with their message."""
    return _error(422, "invalid_request", str(error)), 422


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
    status = error.code or 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "invalid_request")
    headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    return _error(status, code, error.description or ""), status, headers


@bp.errorhandler(Exception)
def unexpected(error: Exception) -> tuple[Response, int]:
    """A bug: log it with its traceback and answer a plain JSON 500, never details."""
    log.exception("unhandled exception on %s %s", request.method, request.path)
    db.session.rollback()
    return _error(500, "server_error", "an unexpected error happened on the server"), 500


def _error(status: int, error: str, description: str) -> Response:
    return jsonify(error=error, error_description=description)


def not_found(kind: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {kind}")


def actor() -> Actor:
    caller: Principal = g.admin_principal
    return caller.actor


@docs_bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API (public: it holds no data)."""
    cache = current_app.extensions.setdefault("authserver.admin_openapi", {})
    if "body" not in cache:
        document = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
        issuer = current_app.config["AUTHSERVER"].issuer.rstrip("/")
        document["servers"] = [{"url": issuer + str(bp.url_prefix)}]
        cache["body"] = json.dumps(document, indent=2).encode()
    response = Response(cache["body"], mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
