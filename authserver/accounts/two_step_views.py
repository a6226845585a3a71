"""Two-step verification pages: the sign-in step and enrolment."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import Length

from ..audit import record, record_and_commit
from ..sessions.models import LoginSession
from ..sessions.services import auth_age_seconds, current_session
from . import totp
from .models import User
from .proof import ProofError, check_fresh_proof
from .services import MAX_PASSWORD_LENGTH
from .two_step import (
    clear_pending,
    complete_sign_in,
    count_wrong_code,
    pending_sign_in,
)
from .views import safe_next

bp = Blueprint("two_step", __name__)

# Changing how one signs in needs a sign-in this recent (seconds).
RECENT_SIGN_IN = 600
WRONG_CODE = "That code is not right. Try again."
WRONG_CREDENTIAL = "That is not your password or a valid code."
INVALID_FORM_STATUS = 422
_MAX_CODE_LENGTH = 64


class CodeForm(FlaskForm):
    """A code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[Length(max=_MAX_CODE_LENGTH)])
    method = HiddenField(default="totp")


class DisableForm(FlaskForm):
    """The current password, or a code, to turn two-step verification off."""

    credential = PasswordField("Password or code", validators=[Length(max=MAX_PASSWORD_LENGTH)])


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token."""


@bp.after_request
def never_store(response: Response) -> Response:
    """These pages show secrets and recovery codes: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- The sign-in step -------------------------------------------------------------------


@bp.route("/login/two-step", methods=["GET", "POST"])
def challenge() -> ResponseReturnValue:
    """Ask for the second factor of a sign-in whose password was right."""
    next_url = safe_next(request.values.get("next"))
    pending = pending_sign_in()
    if pending is None:
        return _restart_sign_in("Your sign-in took too long. Sign in again.", next_url)
    recovery = request.values.get("method") == "recovery"
    form = CodeForm()
    page = {"form": form, "recovery": recovery, "next_url": next_url}
    if request.method == "GET":
        return _challenge_page(page, None, 200)
    if not form.validate_on_submit() or not (form.code.data or "").strip():
        return _challenge_page(page, "Enter the code.", INVALID_FORM_STATUS)
    method = "recovery" if recovery else "totp"
    try:
        amr = totp.check_second_factor(pending.user, form.code.data or "", method)
    except totp.TooManyFailures as error:
        clear_pending()
        _two_step_failed(pending.user, method, "too_many_failures")
        return _challenge_page({**page, "exhausted": True}, str(error), 429)
    if amr is not None:
        return complete_sign_in(pending, amr, next_url)
    _two_step_failed(pending.user, method, "wrong_code")
    if not count_wrong_code():
        return _restart_sign_in("Too many wrong codes. Sign in again.", next_url)
    return _challenge_page(page, WRONG_CODE, INVALID_FORM_STATUS)


def _two_step_failed(user: User, method: str, reason: str) -> None:
    """Log a refused second factor (audit log)."""
    record_and_commit(
        "signin.two_step.failure",
        actor=user.sub,
        actor_type="user",
        subject=user.sub,
        details={"method": method, "reason": reason},
    )


def _challenge_page(page: dict[str, Any], error: str | None, status: int) -> ResponseReturnValue:
    """The code page, in TOTP or recovery-code mode."""
    page["form"].code.data = ""
    return render_template("two_step/challenge.html", error=error, **page), status


def _restart_sign_in(message: str, next_url: str) -> Response:
    """Back to the password step, keeping where the person was going."""
    clear_pending()
    flash(message)
    return redirect(url_for("accounts.login", next=next_url))


# -- Enrolment and management ------------------------------------------------------------


def recent_sign_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Signed in within RECENT_SIGN_IN seconds, else through /login (again) first."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        login_session = current_session()
        back = url_for("two_step.manage")
        if login_session is None:
            return redirect(url_for("accounts.login", next=back))
        if auth_age_seconds(login_session) > RECENT_SIGN_IN:
            return redirect(url_for("accounts.login", reauth="1", next=back))
        return view(login_session, *args, **kwargs)

    return wrapper


@bp.route("/account/two-step", methods=["GET"])
@recent_sign_in
def manage(login_session: LoginSession) -> ResponseReturnValue:
    """Two-step verification: off, waiting for its first code, or on."""
    return _manage_page(login_session.user)


@bp.route("/account/two-step/start", methods=["POST"])
@recent_sign_in
def start(login_session: LoginSession) -> ResponseReturnValue:
    """Make a new secret and show its QR code (not in force until confirmed)."""
    _require_form(ConfirmForm())
    if totp.is_enabled(login_session.user):
        return redirect(url_for("two_step.manage"))
    totp.begin_enrolment(login_session.user)
    return redirect(url_for("two_step.manage"))


@bp.route("/account/two-step/qr.svg", methods=["GET"])
@recent_sign_in
def qr_code(login_session: LoginSession) -> ResponseReturnValue:
    """The QR code of the pending secret's otpauth:// URI, as SVG."""
    user = login_session.user
    secret = totp.pending_secret(user)
    if secret is None:
        abort(404)
    svg = totp.qr_svg(totp.provisioning_uri(user, secret))
    return Response(svg, mimetype="image/svg+xml")


@bp.route("/account/two-step/confirm", methods=["POST"])
@recent_sign_in
def confirm(login_session: LoginSession) -> ResponseReturnValue:
    """The first code from the app turns two-step verification on."""
    form = CodeForm()
    _require_form(form)
    try:
        codes = totp.confirm_enrolment(login_session.user, form.code.data or "")
    except totp.TwoStepError as error:
        return _manage_page(login_session.user, errors={"code": str(error)})
    return render_template("two_step/recovery_codes.html", codes=codes, first_time=True)


@bp.route("/account/two-step/cancel", methods=["POST"])
@recent_sign_in
def cancel(login_session: LoginSession) -> ResponseReturnValue:
    """Abandon a set-up that was never confirmed."""
    _require_form(ConfirmForm())
    totp.cancel_enrolment(login_session.user)
    return redirect(url_for("two_step.manage"))


@bp.route("/account/two-step/recovery-codes", methods=["POST"])
@recent_sign_in
def regenerate(login_session: LoginSession) -> ResponseReturnValue:
    """New recovery codes; the old ones stop working."""
    _require_form(ConfirmForm())
    if not totp.is_enabled(login_session.user):
        return redirect(url_for("two_step.manage"))
    record("recovery_codes.regenerated", subject=login_session.user.sub)
    codes = totp.regenerate_recovery_codes(login_session.user)
    return render_template("two_step/recovery_codes.html", codes=codes, first_time=False)


@bp.route("/account/two-step/disable", methods=["POST"])
@recent_sign_in
def disable(login_session: LoginSession) -> ResponseReturnValue:
    """Turn two-step verification off, with a fresh proof: the password or a valid code."""
    form = DisableForm()
    _require_form(form)
    user = login_session.user
    if not totp.is_enabled(user):
        return redirect(url_for("two_step.manage"))
    try:
        check_fresh_proof(user, form.credential.data or "")
    except ProofError as error:
        message = WRONG_CREDENTIAL if error.reason == "wrong" else str(error)
        return _manage_page(user, errors={"credential": message})
    totp.disable(user)
    flash("Two-step verification is off.")
    return redirect(url_for("two_step.manage"))


def _require_form(form: FlaskForm) -> None:
    """A POST without a valid CSRF token (or oversized fields) is refused."""
    if not form.validate_on_submit():
        abort(400)


def _manage_page(user: User, errors: dict[str, str] | None = None) -> ResponseReturnValue:
    """Render the management page; with errors, as the answer to a form that failed."""
    secret = totp.pending_secret(user)
    body = render_template(
        "two_step/manage.html",
        user=user,
        enabled=totp.is_enabled(user),
        pending_secret=_grouped(secret) if secret else None,
        remaining=totp.remaining_recovery_codes(user) if totp.is_enabled(user) else 0,
        errors=errors or {},
    )
    return body, INVALID_FORM_STATUS if errors else 200


def _grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
