"""Hosted account pages: sign in, sign out, home."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue

from ..sessions.services import current_user, end_session
from .forms import LoginForm, LogoutForm
from .services import authenticate
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
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            return finish_password_step(user, next_url)
        error = INCORRECT_CREDENTIALS
    elif request.method == "POST":
        filled = form.email.data and form.password.data
        error = INCORRECT_CREDENTIALS if filled else MISSING_CREDENTIALS
    form.next.data = next_url
    return render_template("accounts/login.html", form=form, error=error)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """GET asks for confirmation; POST signs out and goes home."""
    form = LogoutForm()
    if form.validate_on_submit():
        end_session()
        return redirect("/")
    return render_template("accounts/logout.html", form=form, user=current_user())


@bp.route("/")
def home() -> str:
    """Who is signed in, with links to sign in or out."""
    return render_template("accounts/home.html", user=current_user())
