"""Hosted account pages: sign in and home (sign out is oidc/logout.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm

from ..mail.links import describe_duration
from ..sessions.services import current_user
from . import lockout
from .email_change import send_verification_email, verify_email_token
from .forms import ConfirmForm, ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from .links import RESET_PASSWORD, VERIFY_EMAIL, peek_token
from .lockout import record_signin_failure
from .password_reset import request_password_reset, reset_password
from .services import AccountError, check_password, find_for_sign_in, normalize_email
from .signup import register
from .two_step import finish_password_step

bp = Blueprint("accounts", __name__)

# One message for an unknown e-mail and a wrong password: do not reveal who has an account.
INCORRECT_CREDENTIALS = "Incorrect e-mail or password."
MISSING_CREDENTIALS = "Enter your e-mail and password."
_MAX_NEXT_LENGTH = 8192


@bp.app_context_processor
def page_context() -> dict[str, Any]:
    """`authserver` (the Config) in every template, for the product name and issuer."""
    return {"authserver": current_app.config["AUTHSERVER"]}


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this server, else "/" (no open redirect).

    RFC 9700 section 4.11: rejects absolute and scheme-relative URLs, and the
    backslash and control-character tricks browsers turn into "//host".
    """
    if not target or len(target) > _MAX_NEXT_LENGTH:
        return "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Sign in with e-mail and password, then go to `next`."""
    form = LoginForm()
    next_url = safe_next(request.form.get("next") or request.args.get("next"))
    if request.method == "GET":
        if request.args.get("reauth") != "1" and current_user() is not None:
            return redirect(next_url)
        form.email.data = request.args.get("login_hint", "")[:254]
    error = None
    if form.validate_on_submit():
        email = form.email.data
        account = find_for_sign_in(email)  # one lookup, for known and unknown addresses alike
        standing = lockout.standing(email, account)  # the same answers for unknown addresses
        user = None if standing.refused else check_password(account, form.password.data)
        if user is not None:
            lockout.clear(user, standing)
            return finish_password_step(user, next_url)
        record_signin_failure(email, account)
        if not standing.refused:
            lockout.record_failure(email, account)
        locked = standing.refused == "locked"
        error = lockout.LOCKED_MESSAGE if locked else INCORRECT_CREDENTIALS
    elif request.method == "POST":
        filled = form.email.data and form.password.data
        error = INCORRECT_CREDENTIALS if filled else MISSING_CREDENTIALS
    form.next.data = next_url
    return render_template("accounts/login.html", form=form, error=error)


@bp.route("/")
def home() -> str:
    """Who is signed in, with links to sign in or out."""
    return render_template("accounts/home.html", user=current_user())


# Sign-up, e-mail verification and password reset (services: accounts/signup.py,
# email_change.py, password_reset.py).
# Their answers never depend on whether an address has an account.

# A link that is unknown, used or expired; which one is not said.
INVALID_LINK_STATUS = 404


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    """Create an account; the answer is the same whether or not the address is taken."""
    if not current_app.config["AUTHSERVER"].signup:
        abort(404)
    form = SignupForm()
    next_url = safe_next(form.next.data or request.args.get("next"))
    if request.method == "GET" and current_user() is not None:
        return redirect(next_url)
    if form.validate_on_submit():
        try:
            register(form.email.data, form.password.data, form.name.data or "")
        except AccountError as error:
            form.email.errors = [str(error)]
        else:
            return _check_your_mail("signup", form.email.data, next_url)
    form.next.data = next_url
    return render_template("accounts/signup.html", form=form), _form_status(form)


@bp.route("/verify-email/<token>", methods=["GET", "POST"], endpoint="verify_email")
def verify_email_page(token: str) -> ResponseReturnValue:
    """GET shows a button; only its POST uses the link, so mail scanners cannot."""
    form = ConfirmForm()
    if form.validate_on_submit():
        user = verify_email_token(token)
        if user is None:
            return _invalid_link("verify_email")
        return render_template("accounts/email_verified.html", email=user.email)
    if peek_token(token, VERIFY_EMAIL) is None:
        return _invalid_link("verify_email")
    return render_template("accounts/verify_email.html", form=form, token=token)


@bp.route("/verify-email/resend", methods=["POST"])
def resend_verification() -> ResponseReturnValue:
    """Send the signed-in person a new verification link."""
    user = current_user()
    if user is None:
        return redirect(url_for("accounts.login"))
    if user.email_verified:
        return redirect(url_for("accounts.home"))
    send_verification_email(user)
    return _check_your_mail("verify", user.email, "/")


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password() -> ResponseReturnValue:
    """Ask for a reset link; the same answer for every address."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_password_reset(form.email.data)
        return _check_your_mail("reset", form.email.data, "/")
    if request.method == "GET":
        form.email.data = request.args.get("login_hint", "")[:254]
    return render_template("accounts/forgot_password.html", form=form), _form_status(form)


@bp.route("/password/reset/<token>", methods=["GET", "POST"], endpoint="reset_password")
def reset_password_page(token: str) -> ResponseReturnValue:
    """Choose a new password through an e-mailed link; then sign in again."""
    link = peek_token(token, RESET_PASSWORD)
    if link is None:
        return _invalid_link("reset_password")
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            user = reset_password(token, form.password.data)
        except AccountError as error:
            form.password.errors = [str(error)]
        else:
            if user is None:
                return _invalid_link("reset_password")
            return render_template("accounts/password_changed.html", email=user.email)
    return render_template(
        "accounts/reset_password.html", form=form, token=token, email=link.email
    ), _form_status(form)


def _check_your_mail(reason: str, email: str, next_url: str) -> str:
    """The page every address gets after a form that may send mail."""
    return render_template(
        "accounts/check_your_mail.html",
        reason=reason,
        email=normalize_email(email),
        next_url=next_url,
        reset_valid_for=_reset_valid_for(),
    )


def _invalid_link(purpose: str) -> tuple[str, int]:
    """The error page for a link that cannot be used (any reason), with a way on."""
    page = render_template(
        "accounts/invalid_link.html",
        purpose=purpose,
        status=INVALID_LINK_STATUS,
        title="This link cannot be used",
        message="It has expired, was already used, or was copied incompletely.",
        reset_valid_for=_reset_valid_for(),
    )
    return page, INVALID_LINK_STATUS


def _reset_valid_for() -> str:
    """How long a reset link lasts, in words."""
    return describe_duration(current_app.config["AUTHSERVER"].password_reset_ttl)


def _form_status(form: FlaskForm) -> int:
    """422 when a submitted form is shown again with errors, else 200."""
    return 422 if request.method == "POST" and form.errors else 200
