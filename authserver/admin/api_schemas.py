"""The admin API's JSON: reading request bodies and query strings (resources are
rendered by admin/serializers.py).

Every field name follows the model it describes (RFC 7591 names for clients); the
OpenAPI document (openapi.json) describes the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import request

from ..audit.services import parse_iso
from ..security.limits import MAX_ROW_ID
from .api_auth import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def invalid(message: str) -> ApiError:
    """422: the request was understood but a value was refused."""
    return ApiError(422, "invalid_request", message)


def json_body() -> dict[str, Any]:
    """The request's JSON object; 415 for another media type, 400 for anything but an object."""
    if not request.is_json:
        raise ApiError(415, "invalid_request", "send a JSON body (Content-Type: application/json)")
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return data


def only(data: dict[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """Refuse unknown members, so a typo is an error rather than silently ignored."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise invalid(f"unknown field: {', '.join(unknown)}")
    return data


def text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    """A string member (None when absent and optional)."""
    value = data.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise invalid(f"{key} must be a string")
    return value


def boolean(data: dict[str, Any], key: str) -> bool | None:
    """A true/false member (None when absent)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false")
    return value


def integer(data: dict[str, Any], key: str) -> int | None:
    """A whole-number member (None when absent); the service checks its range."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{key} must be a whole number")
    return value


def strings(data: dict[str, Any], key: str) -> list[str] | None:
    """A list-of-strings member (None when absent)."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid(f"{key} must be a list of strings")
    return list(value)


def page_args() -> tuple[int, int]:
    """`limit` (1 to 200, default 50) and `offset` (from 0) from the query string."""
    limit = _whole(request.args.get("limit"), "limit", DEFAULT_LIMIT)
    offset = _whole(request.args.get("offset"), "offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"limit must be between 1 and {MAX_LIMIT}")
    return limit, offset


def optional_whole(name: str) -> int | None:
    """A non-negative integer query parameter, or None."""
    raw = request.args.get(name)
    return None if raw is None else _whole(raw, name, 0)


def timestamp_arg(name: str) -> datetime | None:
    """An RFC 3339 date-time (or date) query parameter, UTC when no offset is given; or None."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_iso(raw)
    except ValueError:
        raise invalid(f"{name} must be an RFC 3339 date-time") from None


def _whole(raw: str | None, name: str, default: int) -> int:
    """A whole number in ASCII digits, at most MAX_ROW_ID (what a database id can hold)."""
    if raw is None or raw == "":
        return default
    # Not str.isdigit: it says yes to "²", which int() refuses.
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_ROW_ID:
        raise invalid(f"{name} must be a whole number from 0 to {MAX_ROW_ID}")
    return int(raw)


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of a list, with where the next one starts (null on the last page)."""
    following = offset + limit
    return {
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
        "next_offset": following if following < total else None,
    }
