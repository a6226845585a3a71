"""Browser sign-in sessions, kept server-side in the database.

The cookie holds a random 256-bit token; the database keeps only its SHA-256,
so a copy of the table does not sign anyone in. Every sign-in issues a new token
and revokes the browser's previous one (OWASP Session Management Cheat Sheet:
renew the session id after authentication, against session fixation).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import Response, current_app, g, request
from flask import session as flow_session
from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from ..accounts.models import User
from ..extensions import db, utcnow
from .models import LoginSession, SessionClient
from .signals import EndedSession, sessions_ended

COOKIE_NAME = "authserver_session"
# Keys of the Flask cookie session that survive sign-in; everything else (CSRF token
# included) is dropped so no state from before authentication is carried over.
KEPT_FLOW_KEY_PREFIX = "flow_"
# last_seen_at is written at most this often, not on every request.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
_MAX_TOKEN_LENGTH = 128
_STATE_KEY = "authserver.sessions"


def _state() -> dict[str, Any]:
    """Per-request state, kept in the WSGI environ.

    Not on `flask.g`: g belongs to the app context, which outlives a single request
    when a test (or a CLI command) keeps one open around several requests.
    """
    state: dict[str, Any] = request.environ.setdefault(_STATE_KEY, {})
    return state


def _session_id(token: str) -> str:
    """The database id of a cookie token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# Domain separation of the public session identifier from every other use of the id.
_SID_LABEL = b"authserver sid\x00"


def sid_of(session_id: str) -> str:
    """OpenID Connect Front-Channel Logout 1.0 section 3 / Back-Channel Logout 1.0 section
    2.1: `sid`, the public identifier of a browser sign-in session.

    Derived, never stored: base64url of SHA-256 over a label and the session's database
    id. The id (the SHA-256 of the cookie) is not published; a one-way hash of it tells
    nobody the id or the cookie, is the same for every client and every token of the
    session, and needs no column, no look-up and no key that could rotate.
    """
    digest = hashlib.sha256(_SID_LABEL + session_id.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode("ascii")


# The session, its person and their roles in one query, built once: every page and every
# authorization request reads it.
SESSION_WITH_USER = (
    select(LoginSession)
    .where(LoginSession.id == bindparam("id"))
    .options(joinedload(LoginSession.user).joinedload(User.roles))
)


def current_session() -> LoginSession | None:
    """This browser's live sign-in session, or None (expired, revoked, inactive user).

    Loaded once per request.
    """
    state = _state()
    if "login_session" not in state:
        state["login_session"] = _load(request.cookies.get(COOKIE_NAME, ""))
    login_session: LoginSession | None = state["login_session"]
    return login_session


def _load(token: str) -> LoginSession | None:
    """The live session for a cookie token; a stale cookie is marked for clearing."""
    if not token:
        return None
    login_session = None
    if len(token) <= _MAX_TOKEN_LENGTH:
        login_session = (
            db.session.execute(SESSION_WITH_USER, {"id": _session_id(token)})
            .unique()
            .scalar_one_or_none()
        )
    if login_session is None or not is_live(login_session):
        _state()["cookie"] = None  # clear the cookie in the after_request hook
        return None
    _touch(login_session)
    return login_session


def is_live(login_session: LoginSession) -> bool:
    """True when the session is neither revoked nor expired and its user is active."""
    return (
        login_session.revoked_at is None
        and login_session.expires_at > utcnow()
        and login_session.user is not None
        and login_session.user.is_active
    )


def _touch(login_session: LoginSession) -> None:
    """Record activity, at most once per LAST_SEEN_RESOLUTION to spare the database.

    The one deliberate write of a read path: a single UPDATE, guarded in SQL so that
    concurrent requests of one browser write it once, left to the request's unit of work
    (authserver.core.uow commits it with the response). Never a commit here: that would
    end the caller's transaction in the middle of its request.
    """
    now = utcnow()
    if now - login_session.last_seen_at < LAST_SEEN_RESOLUTION:
        return
    db.session.execute(
        _TOUCH,
        {"session_id": login_session.id, "now": now, "before": now - LAST_SEEN_RESOLUTION},
        execution_options={"synchronize_session": False},
    )
    set_committed_value(login_session, "last_seen_at", now)


_TOUCH = (
    update(LoginSession)
    .where(
        LoginSession.id == bindparam("session_id"),
        LoginSession.last_seen_at <= bindparam("before"),
    )
    .values(last_seen_at=bindparam("now"))
)


def current_user() -> User | None:
    """The signed-in person, or None."""
    login_session = current_session()
    return login_session.user if login_session is not None else None


def start_session(user: User, amr: list[str], acr: str | None = None) -> LoginSession:
    """Sign `user` in with a brand-new session id; the previous one of this browser ends.

    OpenID Connect Core section 2: `auth_time`, `amr` and `acr` describe this
    authentication and end up in id_tokens.
    """
    _revoke_cookie_session()
    _reset_flow_session()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    config = current_app.config["AUTHSERVER"]
    login_session = LoginSession(
        id=_session_id(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        auth_time=now,
        amr=list(amr),
        acr=acr,
        ip=(request.remote_addr or "")[:64] or None,
        user_agent=(request.user_agent.string or "")[:512] or None,
        expires_at=now + timedelta(seconds=config.session_ttl),
    )
    db.session.add(login_session)
    _state().update(login_session=login_session, cookie=token)
    return login_session


def end_session() -> None:
    """Sign this browser out: revoke its session and clear the cookies."""
    _revoke_cookie_session()
    _reset_flow_session()
    _state().update(login_session=None, cookie=None)


def _revoke_cookie_session() -> None:
    """Revoke the session named by this request's cookie, live or not."""
    token = request.cookies.get(COOKIE_NAME, "")
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return
    revoke_sessions(LoginSession.id == _session_id(token))


def revoke_sessions(*where: ColumnElement[bool]) -> list[EndedSession]:
    """Revoke every unrevoked session matching `where`: the one way a session ends.

    Signing out (ours or RP-initiated), a new sign-in replacing this browser's session,
    a new password, the account page's session list, an administrator, a disabled
    account: all of them end sessions here, so every ended session is announced once
    (`signals.sessions_ended`; oidc queues the back-channel logout tokens). No commit.
    """
    if not where:
        raise ValueError("revoke_sessions needs a condition")
    rows = db.session.execute(
        update(LoginSession)
        .where(LoginSession.revoked_at.is_(None), *where)
        .values(revoked_at=utcnow())
        .returning(LoginSession.id, LoginSession.user_id)
        .execution_options(synchronize_session="fetch")
    ).all()
    ended = [EndedSession(row.id, sid_of(row.id), row.user_id) for row in rows]
    if ended:
        sessions_ended.send(None, ended=ended)
    return ended


def _reset_flow_session() -> None:
    """Drop pre-authentication state (and so the CSRF token) from the Flask session."""
    kept = {k: v for k, v in flow_session.items() if k.startswith(KEPT_FLOW_KEY_PREFIX)}
    flow_session.clear()
    flow_session.update(kept)
    g.pop("csrf_token", None)  # Flask-WTF caches the token per request


def record_client(session_id: str, client_id: str) -> None:
    """Remember that `client_id` received an ID Token under this session; no commit.

    Once per pair: a second token of the same session adds nothing (ON CONFLICT DO
    NOTHING, on SQLite and PostgreSQL alike, so two concurrent redemptions cannot fail).
    """
    values = {"session_id": session_id, "client_id": client_id, "created_at": utcnow()}
    dialect = db.session.get_bind().dialect.name
    insert_into = postgresql_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(insert_into(SessionClient).values(**values).on_conflict_do_nothing())


def clients_of(session_ids: list[str]) -> list[tuple[str, str]]:
    """(session_id, client_id) of every client that received an ID Token under these sessions."""
    if not session_ids:
        return []
    rows = db.session.execute(
        select(SessionClient.session_id, SessionClient.client_id)
        .where(SessionClient.session_id.in_(session_ids))
        .order_by(SessionClient.created_at, SessionClient.client_id)
    ).all()
    return [(row.session_id, row.client_id) for row in rows]


def auth_age_seconds(login_session: LoginSession) -> int:
    """Seconds since the person last authenticated (for OpenID Connect `max_age`)."""
    return max(0, int((utcnow() - login_session.auth_time).total_seconds()))


def write_cookie(response: Response) -> Response:
    """after_request: set or clear the session cookie when this request changed it."""
    state = _state()
    if "cookie" not in state:
        return response
    config = current_app.config["AUTHSERVER"]
    token = state["cookie"]
    if token is None:
        response.delete_cookie(
            COOKIE_NAME, path="/", secure=config.secure_cookies, httponly=True, samesite="Lax"
        )
    else:
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=config.session_ttl,
            path="/",
            secure=config.secure_cookies,
            httponly=True,
            samesite="Lax",
        )
    return response
