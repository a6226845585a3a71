"""The JSON admin API at /admin/api/v1: people, clients, roles, signing keys, the audit log.

Every request carries `Authorization: Bearer <access token>` with the `admin` scope
(api_auth.py); each endpoint then needs one permission (roles/permissions.py), and the
services refuse any change above the caller's ceiling (roles/ceiling.py) with 403.
Views parse (api_schemas.py), call admin.services, roles.services or audit.services,
and render.
The OpenAPI 3.1 document describing all of it is served at /admin/api/openapi.json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException

from ..audit import services as audit
from ..clients.services import ClientError
from ..extensions import csrf, db
from ..roles import services as roles
from ..roles.ceiling import PrivilegeError
from . import services
from .api_auth import ApiError, Principal, authenticate
from .api_schemas import (
    boolean,
    invalid,
    json_body,
    only,
    optional_whole,
    page,
    page_args,
    render_client,
    render_key,
    render_role,
    render_user,
    strings,
    text,
    timestamp_arg,
)

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api/v1")
docs_bp = Blueprint("admin_api_docs", __name__, url_prefix="/admin/api")
csrf.exempt(bp)  # bearer tokens, not cookies: no cross-site request can carry one

log = logging.getLogger(__name__)
OPENAPI_PATH = Path(__file__).with_name("openapi.json")
View = TypeVar("View", bound=Callable[..., Any])


# The pipeline around every view


@bp.before_request
def require_admin() -> None:
    """Authenticate the bearer token and remember who acts (the audit log names them)."""
    caller = authenticate(request.headers.get("Authorization"))
    g.admin_principal = caller
    g.admin_actor = caller.actor


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
    g.pop("admin_actor", None)


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


@bp.errorhandler(services.AdminError)
@bp.errorhandler(ClientError)
@bp.errorhandler(roles.RoleError)
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


def _not_found(kind: str) -> ApiError:
    return ApiError(404, "not_found", f"no such {kind}")


def _actor() -> services.Actor:
    caller: Principal = g.admin_principal
    return caller.actor


# People


@bp.get("/users")
@needs("users:read")
def list_users() -> Response:
    limit, offset = page_args()
    users, total = services.search_users(request.args.get("q", ""), limit=limit, offset=offset)
    return jsonify(page([render_user(u) for u in users], total, limit, offset))


@bp.post("/users")
@needs("users:write")
def create_user() -> tuple[Response, int, dict[str, str]]:
    data = only(json_body(), ("email", "name", "password", "roles", "send_reset"))
    user = services.create_user_as_admin(
        text(data, "email", required=True) or "",
        text(data, "name") or "",
        text(data, "password"),
        strings(data, "roles") or [],
        bool(boolean(data, "send_reset")),
        actor=_actor(),
    )
    location = f"{bp.url_prefix}/users/{user.sub}"
    return jsonify(render_user(user)), 201, {"Location": location}


@bp.get("/users/<sub>")
@needs("users:read")
def get_user(sub: str) -> Response:
    return jsonify(render_user(_user(sub)))


@bp.patch("/users/<sub>")
@needs("users:write")
def update_user(sub: str) -> Response:
    user = _user(sub)
    data = only(json_body(), ("name", "is_active", "email_verified", "roles"))
    name, active = text(data, "name"), boolean(data, "is_active")
    verified, role_names = boolean(data, "email_verified"), strings(data, "roles")
    if verified is False:
        raise invalid("email_verified can only be set to true; the person re-verifies a change")
    services.update_user(
        user,
        name=name,
        roles=role_names,
        active=active,
        email_verified=bool(verified),
        actor=_actor(),
    )
    return jsonify(render_user(user))


@bp.post("/users/<sub>/password-reset")
@needs("users:write")
def send_password_reset(sub: str) -> tuple[str, int]:
    services.send_password_reset(_user(sub), actor=_actor())
    return "", 204


@bp.post("/users/<sub>/sign-out")
@needs("users:write")
def sign_out_everywhere(sub: str) -> tuple[str, int]:
    services.sign_out_everywhere(_user(sub), actor=_actor())
    return "", 204


def _user(sub: str) -> Any:
    user = services.get_user(sub)
    if user is None:
        raise _not_found("user")
    return user


# Clients

CLIENT_FIELDS = (
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "resources",
    "web_origins",
    "skip_consent",
    "roles",
    "is_resource_server",
)


@bp.get("/clients")
@needs("clients:read")
def list_clients() -> Response:
    from ..clients.services import list_clients as all_clients

    limit, offset = page_args()
    clients = all_clients()
    window = clients[offset : offset + limit]
    return jsonify(page([render_client(c) for c in window], len(clients), limit, offset))


@bp.post("/clients")
@needs("clients:write")
def create_client() -> tuple[Response, int, dict[str, str]]:
    allowed = (*CLIENT_FIELDS, "token_endpoint_auth_method", "id_token_signed_response_alg")
    data = only(json_body(), allowed)
    client, secret = services.create_client_as_admin(
        actor=_actor(),
        name=text(data, "client_name", required=True) or "",
        redirect_uris=strings(data, "redirect_uris") or [],
        post_logout_redirect_uris=strings(data, "post_logout_redirect_uris") or [],
        grant_types=strings(data, "grant_types") or ["authorization_code", "refresh_token"],
        scope=text(data, "scope") or "openid",
        token_endpoint_auth_method=(
            text(data, "token_endpoint_auth_method") or "client_secret_basic"
        ),
        resources=strings(data, "resources") or [],
        web_origins=strings(data, "web_origins") or [],
        skip_consent=bool(boolean(data, "skip_consent")),
        id_token_signed_response_alg=text(data, "id_token_signed_response_alg"),
        roles=strings(data, "roles") or [],
        is_resource_server=bool(boolean(data, "is_resource_server")),
    )
    body = render_client(client)
    if secret is not None:
        body["client_secret"] = secret  # shown this once; only its hash is stored
    location = f"{bp.url_prefix}/clients/{client.client_id}"
    return jsonify(body), 201, {"Location": location}


@bp.get("/clients/<client_id>")
@needs("clients:read")
def get_client(client_id: str) -> Response:
    return jsonify(render_client(_client(client_id)))


@bp.patch("/clients/<client_id>")
@needs("clients:write")
def update_client(client_id: str) -> Response:
    client = _client(client_id)
    data = only(json_body(), (*CLIENT_FIELDS, "is_active"))
    active = boolean(data, "is_active")
    if set(data) - {"is_active"}:
        services.update_client(
            client,
            name=text(data, "client_name"),
            redirect_uris=strings(data, "redirect_uris"),
            post_logout_redirect_uris=strings(data, "post_logout_redirect_uris"),
            grant_types=strings(data, "grant_types"),
            scope=text(data, "scope"),
            skip_consent=boolean(data, "skip_consent"),
            web_origins=strings(data, "web_origins"),
            resources=strings(data, "resources"),
            roles=strings(data, "roles"),
            is_resource_server=boolean(data, "is_resource_server"),
            actor=_actor(),
        )
    if active is not None and active != client.is_active:
        services.set_client_active(client, active, actor=_actor())
    return jsonify(render_client(client))


@bp.delete("/clients/<client_id>")
@needs("clients:write")
def delete_client(client_id: str) -> tuple[str, int]:
    services.delete_client(_client(client_id), actor=_actor())
    return "", 204


@bp.post("/clients/<client_id>/secret")
@needs("clients:write")
def rotate_client_secret(client_id: str) -> Response:
    client = _client(client_id)
    secret = services.rotate_client_secret(client, actor=_actor())
    return jsonify(client_id=client.client_id, client_secret=secret)


def _client(client_id: str) -> Any:
    from ..clients.services import get_client as find_client

    client = find_client(client_id)
    if client is None:
        raise _not_found("client")
    return client


# Roles


@bp.get("/roles")
@needs("roles:read")
def list_roles() -> Response:
    return jsonify(items=[render_role(r) for r in roles.list_roles()])


@bp.post("/roles")
@needs("roles:write")
def create_role() -> tuple[Response, int, dict[str, str]]:
    data = only(json_body(), ("name", "description", "permissions"))
    role = roles.create_role(
        text(data, "name", required=True) or "",
        description=text(data, "description") or "",
        permissions=strings(data, "permissions") or [],
        actor=_actor(),
    )
    return jsonify(render_role(role)), 201, {"Location": f"{bp.url_prefix}/roles/{role.name}"}


@bp.get("/roles/<name>")
@needs("roles:read")
def get_role(name: str) -> Response:
    return jsonify(render_role(_role(name)))


@bp.patch("/roles/<name>")
@needs("roles:write")
def update_role(name: str) -> Response:
    role = _role(name)
    data = only(json_body(), ("description", "permissions"))
    roles.update_role(
        role,
        description=text(data, "description"),
        permissions=strings(data, "permissions"),
        actor=_actor(),
    )
    return jsonify(render_role(role))


@bp.delete("/roles/<name>")
@needs("roles:write")
def delete_role(name: str) -> tuple[str, int]:
    roles.delete_role(_role(name), actor=_actor())
    return "", 204


def _role(name: str) -> Any:
    role = roles.get_role(name)
    if role is None:
        raise _not_found("role")
    return role


# Signing keys


@bp.get("/keys")
@needs("keys:read")
def list_keys() -> Response:
    return jsonify(items=[render_key(k) for k in services.list_signing_keys()])


@bp.post("/keys/rotate")
@needs("keys:write")
def rotate_keys() -> Response:
    data = only(json_body(), ("alg",)) if request.content_length else {}
    kids = services.rotate_signing_keys(text(data, "alg"), actor=_actor())
    return jsonify(kids=kids, items=[render_key(k) for k in services.list_signing_keys()])


@bp.post("/initial-access-tokens")
@needs("clients:write")
def issue_initial_access_token() -> tuple[Response, int]:
    """RFC 7591 section 3: a single-use token allowing one dynamic registration, shown once."""
    from ..clients.registration import issue_initial_access_token as issue

    data = only(json_body(), ("note",)) if request.content_length else {}
    note = (text(data, "note") or "")[:200]
    token = issue(note=note, created_by=_actor().id)
    return jsonify(initial_access_token=token, note=note), 201


# The audit log


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


# The OpenAPI document


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
