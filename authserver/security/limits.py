"""Request limits and strict parsing: how much a request may carry, and how often a name may repeat.

The body size is capped by Flask's MAX_CONTENT_LENGTH (413) and multipart parsing by
Werkzeug's MAX_FORM_PARTS and MAX_FORM_MEMORY_SIZE (create_app). Here, before any view
runs: no more than MAX_PARAMETERS query and form parameters, none longer than
MAX_VALUE_LENGTH characters, else 400 (`invalid_request` as JSON on API paths, the
error page for people). Unknown parameters are otherwise ignored, as RFC 6749
section 3.1 asks.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from werkzeug.datastructures import MultiDict
from werkzeug.routing import IntegerConverter, Map

from ..core.capabilities import ENDPOINTS_BY_AUTHLIB_NAME, REPORTS_BAD_PARAMETERS_TO_THE_CLIENT

# No form or protocol request of ours comes near these; the admin role form has the
# most fields (one checkbox per permission).
MAX_PARAMETERS = 100
MAX_VALUE_LENGTH = 8 * 1024
MAX_JSON_DEPTH = 32
NUL = "\x00"
NUL_MESSAGE = "The request contains a NUL character."
# Row ids are SQL INTEGER (32 bits on PostgreSQL); a larger number names no row of ours.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in a route: a whole number from 0 to MAX_ROW_ID, else no route matches (404).

    Werkzeug's converter takes any number of digits, and a number past what the database
    column holds makes the driver raise (a 500) instead of finding nothing.
    """

    def __init__(self, map: Map, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


def init_app(app: Flask) -> None:
    """Check every request's parameters before its view runs; bound `<int:...>` route parts.

    Called before any blueprint is registered, so every `<int:...>` uses RowIdConverter.
    """
    app.url_map.converters["int"] = RowIdConverter
    app.before_request(check_parameter_limits)


def check_parameter_limits() -> None:
    """Refuse requests with too many parameters, an oversized value, or a NUL anywhere (400).

    No name, value or path segment of ours holds U+0000, and PostgreSQL cannot store or
    even compare it in text (it raises, which would be a 500): it is refused here, once,
    for every endpoint, in the path, the query, the form and JSON bodies.
    """
    if NUL in request.path:
        abort(400, description=NUL_MESSAGE)
    params = request_parameters()
    if len(params) > MAX_PARAMETERS:
        abort(400, description=f"Too many parameters (at most {MAX_PARAMETERS}).")
    # RFC 6749 section 4.1.2.1: once the client and redirect_uri are known good, the
    # authorization endpoint reports an invalid parameter (NUL included) to the client by
    # redirect, not on a page; its pipeline refuses NUL itself (check_no_nul_characters).
    nul_refused_here = request.endpoint not in REPORTS_BAD_PARAMETERS_TO_THE_CLIENT
    for name, value in params:
        if len(name) > MAX_VALUE_LENGTH or len(value) > MAX_VALUE_LENGTH:
            abort(400, description=f"A parameter is longer than {MAX_VALUE_LENGTH} characters.")
        if nul_refused_here and (NUL in name or NUL in value):
            abort(400, description=NUL_MESSAGE)
    if request.is_json:
        try:
            body = request.get_json(silent=True)
        except RecursionError:  # nested deeper than the parser's stack: not ValueError
            abort(400, description="The JSON body is nested too deeply.")
        if _holds_nul(body):
            abort(400, description=NUL_MESSAGE)


def _holds_nul(value: Any, depth: int = 0) -> bool:
    """True when a JSON value has a NUL in any string, key or value, however deep."""
    if isinstance(value, str):
        return NUL in value
    if depth > MAX_JSON_DEPTH:
        return False  # deeper than any body of ours; the endpoint refuses its shape anyway
    if isinstance(value, dict):
        return any(_holds_nul(k, depth) or _holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item, depth + 1) for item in value)
    return False


def request_parameters() -> list[tuple[str, str]]:
    """Query and form parameters, names and values; a JSON body is not counted here."""
    params = list(request.args.items(multi=True))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        params.extend(request.form.items(multi=True))
    return params


def repeated_parameter(params: MultiDict[str, str], endpoint: str) -> str | None:
    """RFC 6749 section 3.1: the first single-valued parameter `params` holds more than once.

    `endpoint` is Authlib's name for it (core/capabilities.py lists each one's
    parameters); `resource` may repeat (RFC 8707 section 2) and unknown parameters are
    ignored, repeated or not.
    """
    repeated = {name for name, values in params.lists() if len(values) > 1}
    if not repeated:  # the usual case: one pass over the parameters, no look-ups
        return None
    registered = ENDPOINTS_BY_AUTHLIB_NAME.get(endpoint)
    single_valued = registered.single_valued if registered else ()
    for name in single_valued:
        if name in repeated:
            return name
    return None
