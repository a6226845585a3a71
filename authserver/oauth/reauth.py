"""The re-authentication marker: "the sign-in this very request asked for has happened".

When /authorize sends a signed-in person to sign in again (OpenID Connect Core section
3.1.2.1 `prompt=login`, `max_age`, an `id_token_hint` naming someone else, a step-up to a
higher `acr`), the continuation URL carries a marker. Coming back with it, the request is
satisfied by a sign-in made after the marker. The marker is signed and short-lived, and
bound to this browser (a random value in the Flask cookie session, under a `flow_` key so
it survives the sign-in: sessions/services.py) and to the request's own parameters, so a
marker from another request or another browser counts for nothing.

`prompt=select_account` (section 3.1.2.1) uses a sibling marker: "continue as the
signed-in person" was chosen for this request, in this browser, by this very session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from flask import session as flow_session
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..sessions.services import KEPT_FLOW_KEY_PREFIX

REAUTH_PARAM = "authserver_reauth"
SELECTED_PARAM = "authserver_selected"
REAUTH_MAX_AGE = 600
REAUTH_SALT = "authserver.reauth"
SELECTION_SALT = "authserver.select_account"
REAUTH_BROWSER_KEY = KEPT_FLOW_KEY_PREFIX + "reauth"
# Not bound: the organization picker, shown after the sign-in, adds `organization`.
UNBOUND_PARAMS = {"organization"}


def mint_marker(params: Iterable[tuple[str, str]]) -> str:
    """A marker for the request with these (its own) parameters, in this browser, now."""
    binding = _binding(params, create=True)
    return _serializer().dumps({"at": int(time.time()), "for": binding})


def is_fresh(marker: str | None, params: Iterable[tuple[str, str]], auth_time: datetime) -> bool:
    """True when `marker` was minted for this request in this browser, at most
    REAUTH_MAX_AGE ago, and the sign-in (`auth_time`) happened after it."""
    if not marker:
        return False
    try:
        payload = _serializer().loads(marker, max_age=REAUTH_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return False
    if not isinstance(payload, dict):
        return False
    asked_at, bound_to = payload.get("at"), payload.get("for")
    expected = _binding(params, create=False)
    if not isinstance(asked_at, int) or not isinstance(bound_to, str) or expected is None:
        return False
    return hmac.compare_digest(bound_to, expected) and auth_time.timestamp() >= asked_at


def mint_selection(params: Iterable[tuple[str, str]], session_id: str) -> str:
    """A marker: the account of session `session_id` was chosen for this request here."""
    binding = _binding(_with_session(params, session_id), create=True)
    return _serializer(SELECTION_SALT).dumps({"for": binding})


def is_selected(marker: str | None, params: Iterable[tuple[str, str]], session_id: str) -> bool:
    """True when `marker` says this request's account was chosen in this browser, at most
    REAUTH_MAX_AGE ago, by the session still signed in."""
    if not marker:
        return False
    try:
        payload = _serializer(SELECTION_SALT).loads(marker, max_age=REAUTH_MAX_AGE)
    except (BadSignature, ValueError, TypeError):
        return False
    bound_to = payload.get("for") if isinstance(payload, dict) else None
    expected = _binding(_with_session(params, session_id), create=False)
    if not isinstance(bound_to, str) or expected is None:
        return False
    return hmac.compare_digest(bound_to, expected)


def _with_session(params: Iterable[tuple[str, str]], session_id: str) -> list[tuple[str, str]]:
    """The parameters and the session (its id is a hash, and only its HMAC leaves here)."""
    return [*params, (" session", session_id)]


def _serializer(salt: str = REAUTH_SALT) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _binding(params: Iterable[tuple[str, str]], *, create: bool) -> str | None:
    """An HMAC of the request's parameters (in a canonical order) keyed with this browser's
    random value; None when the browser has none yet and `create` is false."""
    browser = flow_session.get(REAUTH_BROWSER_KEY)
    if not isinstance(browser, str) or not browser:
        if not create:
            return None
        browser = secrets.token_urlsafe(32)
        flow_session[REAUTH_BROWSER_KEY] = browser
    bound = sorted((k, v) for k, v in params if k not in UNBOUND_PARAMS)
    message = json.dumps(bound, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return hmac.new(browser.encode("utf-8"), message, hashlib.sha256).hexdigest()
