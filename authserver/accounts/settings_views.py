"""The account page: profile, password, sessions, connected apps."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..sessions.models import LoginSession
from ..sessions.services import current_session, end_session
from . import apps, proof, settings
from .models import User
from .proof import ProofError
from .services import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, AccountError

bp = Blueprint("account", __name__, url_prefix="/account")

TWO_STEP_PATH = "/account/two-step"
# What a form's status code is when it is shown again with errors next to the fields.
INVALID_FORM_STATUS = 422
WRONG_PROOF = proof.WRONG_PASSWORD


class NameForm(FlaskForm):
    """The display name."""

    name = StringField("Name", validators=[Length(max=settings.MAX_NAME_LENGTH)])


class EmailForm(FlaskForm):
    """A new e-mail address, to be verified before it replaces the current one, and a proof."""

    email = StringField("New e-mail", validators=[DataRequired(), Length(max=MAX_EMAIL_LENGTH)])
    # The current password, or a code with two-step verification on (accounts.proof).
    email_password = PasswordField("Your password", [Length(max=MAX_PASSWORD_LENGTH)])


class PasswordForm(FlaskForm):
    """The current password and the new one twice."""

    current_password = PasswordField("Current password", [Length(max=MAX_PASSWORD_LENGTH)])
    new_password = PasswordField("New password", [Length(max=MAX_PASSWORD_LENGTH)])
    confirm_password = PasswordField("New password again", [Length(max=MAX_PASSWORD_LENGTH)])


class SessionForm(FlaskForm):
    """The short reference of one sign-in session."""

    session = HiddenField(validators=[DataRequired(), Length(max=64)])


class AppForm(FlaskForm):
    """The client_id of a connected app."""

    client_id = HiddenField(validators=[DataRequired(), Length(max=255)])


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token."""


def signed_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Send signed-out people to the sign-in page, coming back to /account."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        login_session = current_session()
        if login_session is None:
            return redirect(url_for("accounts.login", next=url_for("account.index")))
        return view(login_session, *args, **kwargs)

    return wrapper


@bp.after_request
def never_store(response: Response) -> Response:
    """Account pages show personal data: no cache may keep them (RFC 9111 section 5.2.2.5)."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("", methods=["GET"])
@signed_in
def index(login_session: LoginSession) -> ResponseReturnValue:
    """The whole account page."""
    return _page(login_session)


@bp.route("/name", methods=["POST"])
@signed_in
def change_name(login_session: LoginSession) -> ResponseReturnValue:
    """Save a new display name."""
    form = NameForm()
    if not form.validate_on_submit():
        return _page(login_session, errors={"name": _first_error(form, "name")})
    try:
        settings.update_name(login_session.user, form.name.data or "")
    except AccountError as error:
        return _page(login_session, errors={"name": str(error)})
    flash("Your name was saved.")
    return _back()


@bp.route("/email", methods=["POST"])
@signed_in
def change_email(login_session: LoginSession) -> ResponseReturnValue:
    """Send a verification link to a new address; it replaces the old one once opened."""
    form = EmailForm()
    if not form.validate_on_submit():
        if form.email_password.errors:  # longer than any password can be
            return _page(login_session, errors={"email_password": WRONG_PROOF})
        return _page(login_session, errors={"email": "Enter the new e-mail address."})
    try:
        address = settings.request_new_email(
            login_session.user, form.email.data, form.email_password.data or ""
        )
    except ProofError as error:
        return _page(
            login_session, errors={"email_password": str(error)}, new_email=form.email.data
        )
    except AccountError as error:
        return _page(login_session, errors={"email": str(error)}, new_email=form.email.data)
    flash(f"We sent a link to {address}. Your e-mail address changes when you open it.")
    return _back()


@bp.route("/password", methods=["POST"])
@signed_in
def change_password(login_session: LoginSession) -> ResponseReturnValue:
    """Change the password after a fresh proof; the other sessions and every grant end."""
    form = PasswordForm()
    if not form.validate_on_submit():
        return _page(login_session, errors={"current_password": "Enter your current password."})
    try:
        settings.change_password(
            login_session.user,
            form.current_password.data or "",
            form.new_password.data or "",
            form.confirm_password.data or "",
            keep_session_id=login_session.id,
        )
    except settings.PasswordChangeError as error:
        return _page(login_session, errors={error.field: str(error)})
    flash("Your password was changed. You were signed out everywhere else.")
    return _back()


@bp.route("/sessions/sign-out", methods=["POST"])
@signed_in
def sign_out_session(login_session: LoginSession) -> ResponseReturnValue:
    """Sign one of the person's sessions out; this browser's signs the person out."""
    form = SessionForm()
    if not form.validate_on_submit():
        abort(400)
    target = settings.find_session(login_session.user, form.session.data)
    if target is None:
        abort(404)
    if target.id == login_session.id:
        end_session()
        return redirect(url_for("accounts.home"))
    settings.revoke_session(target)
    flash(f"Signed out {settings.describe_device(target.user_agent)}.")
    return _back()


@bp.route("/sessions/sign-out-others", methods=["POST"])
@signed_in
def sign_out_other_sessions(login_session: LoginSession) -> ResponseReturnValue:
    """Sign out every session of the person but this browser's."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    settings.revoke_other_sessions(login_session.user, keep_session_id=login_session.id)
    flash("You were signed out everywhere else.")
    return _back()


@bp.route("/apps/revoke", methods=["POST"])
@signed_in
def revoke_app(login_session: LoginSession) -> ResponseReturnValue:
    """Withdraw an app's access: its consent goes and its tokens stop working."""
    form = AppForm()
    if not form.validate_on_submit():
        abort(400)
    if not apps.revoke_app(login_session.user, form.client_id.data):
        abort(404)
    flash("The app's access was removed.")
    return _back()


def _back() -> Response:
    """Post/redirect/get: back to the account page after a change."""
    return redirect(url_for("account.index"))


def _first_error(form: FlaskForm, name: str) -> str:
    """The first validation message of a field, as a sentence."""
    errors = form.errors.get(name) or ["This value is not valid."]
    return str(errors[0])


def _page(
    login_session: LoginSession, errors: dict[str, str] | None = None, new_email: str = ""
) -> ResponseReturnValue:
    """Render the account page; with errors, as the answer to a form that failed."""
    user: User = login_session.user
    body = render_template(
        "account/index.html",
        user=user,
        errors=errors or {},
        new_email=new_email,
        pending_email=settings.pending_email(user),
        sessions=settings.session_summaries(user, login_session.id),
        apps=apps.connected_apps(user),
        two_step_enabled=user.totp_enabled_at is not None,
        two_step_path=TWO_STEP_PATH,
    )
    return body, INVALID_FORM_STATUS if errors else 200
