"""Two-step verification (RFC 6238 TOTP) in the sign-in flow.

After a right password, a person with two-step verification on is not signed in:
the Flask cookie session (signed, HttpOnly) holds a short-lived marker naming them,
and /login/two-step asks for the second factor. No LoginSession exists until it
is given, so /authorize and /account see nobody signed in in between.

Where to go afterwards travels in the URL and the form, as on /login, not in the
marker: an /authorize continuation can be long, and a cookie past 4 KB is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import redirect, url_for
from flask import session as flow_session
from werkzeug.wrappers import Response

from ..audit import record
from ..extensions import db
from ..sessions.services import start_session
from .models import User
from .totp import ACR_PASSWORD, ACR_TWO_STEP, AMR_PASSWORD, is_enabled

# Kept across start_session, which keeps only keys starting with "flow_".
PENDING_KEY = "flow_two_step"
PENDING_TTL = 300
# Wrong codes allowed per password step before the password is asked for again.
MAX_ATTEMPTS = 5


@dataclass
class PendingSignIn:
    """A person who gave the right password and owes the second step."""

    user: User
    attempts: int


def finish_password_step(user: User, next_url: str) -> Response:
    """The password was right: sign in, or ask for the second step when it is on."""
    if not is_enabled(user):
        record("signin.success", actor=user.sub, subject=user.sub, details={"amr": ["pwd"]})
        start_session(user, amr=list(AMR_PASSWORD), acr=ACR_PASSWORD)
        return redirect(next_url)
    flow_session[PENDING_KEY] = {"uid": user.id, "at": int(time.time()), "tries": 0}
    if next_url == "/":
        return redirect(url_for("two_step.challenge"))
    return redirect(url_for("two_step.challenge", next=next_url))


def pending_sign_in() -> PendingSignIn | None:
    """The sign-in waiting for its second step, or None (absent, expired, or user gone)."""
    marker = _marker()
    if marker is None:
        return None
    if time.time() - marker["at"] > PENDING_TTL or marker["tries"] >= MAX_ATTEMPTS:
        return None
    user = db.session.get(User, marker["uid"])
    if user is None or not user.is_active or not is_enabled(user):
        return None
    return PendingSignIn(user=user, attempts=marker["tries"])


def count_wrong_code() -> bool:
    """One more wrong code; False when the attempts are used up and the marker is gone."""
    marker = _marker()
    if marker is None:
        return False
    marker["tries"] += 1
    if marker["tries"] >= MAX_ATTEMPTS:
        clear_pending()
        return False
    flow_session[PENDING_KEY] = marker
    return True


def complete_sign_in(pending: PendingSignIn, amr: tuple[str, ...], next_url: str) -> Response:
    """The second step was right: start the session and go where the person was going."""
    user = pending.user
    record("signin.success", actor=user.sub, subject=user.sub, details={"amr": list(amr)})
    start_session(pending.user, amr=list(amr), acr=ACR_TWO_STEP)
    clear_pending()
    return redirect(next_url)


def clear_pending() -> None:
    """Forget the waiting sign-in."""
    flow_session.pop(PENDING_KEY, None)


def _marker() -> dict[str, Any] | None:
    """The marker with the expected shape, or None."""
    marker = flow_session.get(PENDING_KEY)
    if not isinstance(marker, dict):
        return None
    fields = {"uid": int, "at": int, "tries": int}
    if any(not isinstance(marker.get(name), kind) for name, kind in fields.items()):
        return None
    return dict(marker)
