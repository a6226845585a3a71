"""The admin API's signing keys: list, rotate."""

from __future__ import annotations

from flask import Response, jsonify, request

from ..api_schemas import (
    boolean,
    json_body,
    only,
    text,
)
from ..serializers import serialize_key
from ..services import keys as services
from .base import actor, bp, needs


@bp.get("/keys")
@needs("keys:read")
def list_keys() -> Response:
    return jsonify(items=[serialize_key(k) for k in services.list_signing_keys()])


@bp.post("/keys/rotate")
@needs("keys:write")
def rotate_keys() -> Response:
    data = only(json_body(), ("alg", "now", "emergency")) if request.content_length else {}
    kids = services.rotate_signing_keys(
        text(data, "alg"),
        immediately=bool(boolean(data, "now")),
        emergency=bool(boolean(data, "emergency")),
        actor=actor(),
    )
    return jsonify(kids=kids, items=[serialize_key(k) for k in services.list_signing_keys()])
