"""The admin API's people: list, create, read, change, reset, sign out."""

from __future__ import annotations

from flask import Response, jsonify, request

from ...accounts.models import User
from ..api_schemas import (
    boolean,
    invalid,
    json_body,
    only,
    page,
    page_args,
    strings,
    text,
)
from ..serializers import serialize_user
from ..services import users as services
from .base import actor, bp, needs, not_found


@bp.get("/users")
@needs("users:read")
def list_users() -> Response:
    limit, offset = page_args()
    users, total = services.search_users(request.args.get("q", ""), limit=limit, offset=offset)
    return jsonify(page([serialize_user(u) for u in users], total, limit, offset))


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
        actor=actor(),
    )
    location = f"{bp.url_prefix}/users/{user.sub}"
    return jsonify(serialize_user(user)), 201, {"Location": location}


@bp.get("/users/<sub>")
@needs("users:read")
def get_user(sub: str) -> Response:
    return jsonify(serialize_user(_user(sub)))


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
        actor=actor(),
    )
    return jsonify(serialize_user(user))


@bp.post("/users/<sub>/password-reset")
@needs("users:write")
def send_password_reset(sub: str) -> tuple[str, int]:
    services.send_password_reset(_user(sub), actor=actor())
    return "", 204


@bp.post("/users/<sub>/sign-out")
@needs("users:write")
def sign_out_everywhere(sub: str) -> tuple[str, int]:
    services.sign_out_everywhere(_user(sub), actor=actor())
    return "", 204


def _user(sub: str) -> User:
    user = services.get_user(sub)
    if user is None:
        raise not_found("user")
    return user
