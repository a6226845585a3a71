"""Request limits and strict parsing: how much a request may carry, and how often a name may repeat.

The body size is capped by Flask's MAX_CONTENT_LENGTH (413) and multipart parsing by
Werkzeug's MAX_FORM_PARTS and MAX_FORM_MEMORY_SIZE (create_app). Here, before any view
runs: no more than MAX_PARAMETERS query and form parameters, none longer than
MAX_VALUE_LENGTH characters, else 400 (`invalid_request` as JSON on API paths, the
error page for people). Unknown parameters are otherwise ignored, as RFC 6749
section 3.1 asks.
"""

from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.datastructures import MultiDict

# No form or protocol request of ours comes near these; the admin role form has the
# most fields (one checkbox per permission).
MAX_PARAMETERS = 100
MAX_VALUE_LENGTH = 8 * 1024

# RFC 6749 section 3.1: "Request and response parameters MUST NOT be included more than
# once." The parameters each endpoint understands; `resource` may repeat (RFC 8707
# section 2) and unknown parameters are ignored, repeated or not.
CLIENT_AUTH_PARAMETERS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")
TOKEN_PARAMETERS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "device_code",
    "username",
    "password",
    *CLIENT_AUTH_PARAMETERS,
)
# RFC 7009 section 2.1 and RFC 7662 section 2.1.
TOKEN_HINT_PARAMETERS = ("token", "token_type_hint", *CLIENT_AUTH_PARAMETERS)
# RFC 8628 section 3.1.
DEVICE_AUTHORIZATION_PARAMETERS = ("scope", *CLIENT_AUTH_PARAMETERS)
SINGLE_VALUED_BY_ENDPOINT = {
    "token": TOKEN_PARAMETERS,
    "revocation": TOKEN_HINT_PARAMETERS,
    "introspection": TOKEN_HINT_PARAMETERS,
    "device_authorization": DEVICE_AUTHORIZATION_PARAMETERS,
}


def init_app(app: Flask) -> None:
    """Check every request's parameters before its view runs."""
    app.before_request(check_parameter_limits)


def check_parameter_limits() -> None:
    """Refuse requests with too many parameters or an oversized value (400)."""
    params = request_parameters()
    if len(params) > MAX_PARAMETERS:
        abort(400, description=f"Too many parameters (at most {MAX_PARAMETERS}).")
    for name, value in params:
        if len(name) > MAX_VALUE_LENGTH or len(value) > MAX_VALUE_LENGTH:
            abort(400, description=f"A parameter is longer than {MAX_VALUE_LENGTH} characters.")


def request_parameters() -> list[tuple[str, str]]:
    """Query and form parameters, names and values; a JSON body is not counted here."""
    params = list(request.args.items(multi=True))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        params.extend(request.form.items(multi=True))
    return params


def repeated_parameter(params: MultiDict[str, str], endpoint: str) -> str | None:
    """The first single-valued parameter of `endpoint` that `params` holds more than once."""
    single_valued = SINGLE_VALUED_BY_ENDPOINT.get(endpoint, ())
    repeated = {name for name, values in params.lists() if len(values) > 1}
    if not repeated:  # the usual case: one pass over the parameters, no look-ups
        return None
    for name in single_valued:
        if name in repeated:
            return name
    return None
