"""RFC 8628 routes: the device authorization endpoint, user code entry and confirmation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask import session as flow_session
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, StringField
from wtforms.validators import Length

from ..clients.cache import load_client
from ..extensions import csrf
from ..sessions.services import current_session, current_user
from .consent import describe_scopes, grantable_scope
from .device import (
    approve_device_code,
    deny_device_code,
    find_pending_code,
    format_user_code,
    normalize_user_code,
)

bp = Blueprint("device", __name__)

# One message for a wrong, expired or already used code (section 5.1: no hints to a guesser).
INVALID_CODE = "That code is not valid or has expired. Check the code on your device and try again."
MAX_USER_CODE_INPUT = 32
INVALID_FORM_STATUS = 422
OUTCOMES = ("approved", "denied")
# The code this browser confirmed through the rate-limited entry page (section 5.1: user
# codes are short, so guessing is limited there); the decision acts on it and nothing else.
# Not a "flow_" key: signing in again forgets it.
CONFIRMED_KEY = "device_confirmed"


class UserCodeForm(FlaskForm):
    """The code the device shows."""

    user_code = StringField("Code", validators=[Length(max=MAX_USER_CODE_INPUT)])


class DecisionForm(FlaskForm):
    """Allow or Deny, for the code on the confirm page."""

    user_code = HiddenField(validators=[Length(max=MAX_USER_CODE_INPUT)])


@bp.post("/oauth2/device_authorization")
@csrf.exempt
def device_authorization() -> Response:
    """RFC 8628 section 3.1: the device authorization request."""
    server: Any = current_app.extensions["authserver.oauth"]
    response: Response = server.create_endpoint_response("device_authorization")
    return response


@bp.get("/device")
def enter_code() -> ResponseReturnValue:
    """Section 3.3: the verification_uri; `?user_code=` (verification_uri_complete) pre-fills it."""
    user_code = _displayed(request.args.get("user_code", ""))
    if current_session() is None:
        return _sign_in(user_code)
    return _entry_page(user_code)


@bp.post("/device")
def submit_code() -> ResponseReturnValue:
    """Look the code up and ask the person to confirm it."""
    form = UserCodeForm()
    user_code = _displayed(form.user_code.data or "")
    login_session = current_session()
    if login_session is None:
        return _sign_in(user_code)
    row = find_pending_code(user_code) if form.validate() else None
    client = load_client(row.client_id) if row is not None else None
    if row is None or client is None:
        flow_session.pop(CONFIRMED_KEY, None)
        return _entry_page(user_code, error=INVALID_CODE)
    flow_session[CONFIRMED_KEY] = row.user_code
    return render_template(
        "device/confirm.html",
        form=DecisionForm(formdata=None, user_code=format_user_code(row.user_code)),
        user_code=format_user_code(row.user_code),
        client_name=client.client_name,
        # Exactly what approving grants (approve_device_code narrows to the person's holdings).
        scopes=describe_scopes(grantable_scope(client, login_session.user, row.scope)),
        user=current_user(),
    )


@bp.post("/device/decision")
def decide() -> ResponseReturnValue:
    """Section 3.3: Allow approves the device with this sign-in; Deny refuses it.

    Only the code this browser confirmed on the entry page can be decided: a code posted
    here directly would skip that page's rate limit and let a guesser try codes freely.
    """
    form = DecisionForm()
    user_code = _displayed(form.user_code.data or "")
    login_session = current_session()
    if login_session is None:
        return _sign_in(user_code)
    confirmed = flow_session.pop(CONFIRMED_KEY, None)
    posted = normalize_user_code(user_code)
    if not form.validate() or not isinstance(confirmed, str) or posted != confirmed:
        return _entry_page(user_code, error=INVALID_CODE)
    row = find_pending_code(confirmed)
    if row is None:
        return _entry_page(user_code, error=INVALID_CODE)
    allowed = request.form.get("decision") == "allow"
    decided = approve_device_code(row, login_session) if allowed else deny_device_code(row)
    if not decided:
        return _entry_page(user_code, error=INVALID_CODE)
    return redirect(url_for("device.done", outcome="approved" if allowed else "denied"))


@bp.get("/device/done")
def done() -> ResponseReturnValue:
    """The person may go back to the device, which learns the answer when it polls."""
    outcome = request.args.get("outcome")
    return render_template("device/done.html", approved=outcome == OUTCOMES[0])


def _displayed(value: str) -> str:
    """Section 6.1: what the field shows: XXXX-XXXX when it reads as a code, else as typed."""
    value = value[:MAX_USER_CODE_INPUT]
    code = normalize_user_code(value)
    return format_user_code(code) if code is not None else value.strip()


def _entry_page(user_code: str, error: str | None = None) -> ResponseReturnValue:
    page = render_template(
        "device/enter.html",
        form=UserCodeForm(formdata=None, user_code=user_code),
        error=error,
    )
    return (page, INVALID_FORM_STATUS) if error else page


def _sign_in(user_code: str) -> Response:
    """Sign-in first, coming back to the entry page with the code still filled in."""
    target = url_for("device.enter_code", user_code=user_code or None)
    return redirect(url_for("accounts.login", next=target))
