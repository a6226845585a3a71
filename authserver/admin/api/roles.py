"""The admin API's roles: list, create, read, change, delete."""

from __future__ import annotations

from flask import Response, jsonify

from ...accounts.models import Role
from ...roles import services as roles
from ..api_schemas import (
    json_body,
    only,
    strings,
    text,
)
from ..serializers import serialize_role
from .base import actor, bp, needs, not_found


@bp.get("/roles")
@needs("roles:read")
def list_roles() -> Response:
    return jsonify(items=[serialize_role(r) for r in roles.list_roles()])


@bp.post("/roles")
@needs("roles:write")
def create_role() -> tuple[Response, int, dict[str, str]]:
    data = only(json_body(), ("name", "description", "permissions"))
    role = roles.create_role(
        text(data, "name", required=True) or "",
        description=text(data, "description") or "",
        permissions=strings(data, "permissions") or [],
        actor=actor(),
    )
    return jsonify(serialize_role(role)), 201, {"Location": f"{bp.url_prefix}/roles/{role.name}"}


@bp.get("/roles/<name>")
@needs("roles:read")
def get_role(name: str) -> Response:
    return jsonify(serialize_role(_role(name)))


@bp.patch("/roles/<name>")
@needs("roles:write")
def update_role(name: str) -> Response:
    role = _role(name)
    data = only(json_body(), ("description", "permissions"))
    roles.update_role(
        role,
        description=text(data, "description"),
        permissions=strings(data, "permissions"),
        actor=actor(),
    )
    return jsonify(serialize_role(role))


@bp.delete("/roles/<name>")
@needs("roles:write")
def delete_role(name: str) -> tuple[str, int]:
    roles.delete_role(_role(name), actor=actor())
    return "", 204


def _role(name: str) -> Role:
    role = roles.get_role(name)
    if role is None:
        raise not_found("role")
    return role
