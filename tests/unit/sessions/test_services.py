"""Server-side sign-in sessions: ids, expiry, revocation and the cookie."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import event

from authserver.core import uow
from authserver.extensions import db, utcnow
from authserver.sessions.models import LoginSession
from authserver.sessions.services import (
    COOKIE_NAME,
    auth_age_seconds,
    current_session,
    current_user,
    end_session,
    start_session,
)
from tests.factories import make_user


def sign_in(app: Flask, **kwargs: Any) -> tuple[LoginSession, str]:
    """Start a session in a request and return it with the cookie value sent back."""
    user = kwargs.pop("user", None) or make_user()
    with app.test_request_context("/login", method="POST"):
        login_session = start_session(user, amr=["pwd"], **kwargs)
        response = app.process_response(app.make_response(""))
    cookie = _set_cookie(response.headers.getlist("Set-Cookie"))
    return login_session, cookie.split(";")[0].split("=", 1)[1]


def _set_cookie(headers: list[str]) -> str:
    return next(header for header in headers if header.startswith(COOKIE_NAME + "="))


def with_cookie(app: Flask, token: str) -> Any:
    return app.test_request_context("/", headers={"Cookie": f"{COOKIE_NAME}={token}"})


def test_start_session_stores_only_the_hash_of_a_random_token(app: Flask) -> None:
    login_session, token = sign_in(app, acr="urn:example:pwd")

    assert len(token) >= 43
    assert login_session.id == hashlib.sha256(token.encode()).hexdigest()
    assert db.session.get(LoginSession, token) is None
    assert login_session.amr == ["pwd"]
    assert login_session.acr == "urn:example:pwd"
    assert login_session.auth_time == login_session.created_at


def test_the_session_lasts_session_ttl(app: Flask) -> None:
    login_session, _ = sign_in(app)

    ttl = app.config["AUTHSERVER"].session_ttl
    assert login_session.expires_at == login_session.created_at + timedelta(seconds=ttl)


def test_the_cookie_is_http_only_lax_and_site_wide(app: Flask) -> None:
    user = make_user()
    with app.test_request_context("/login", method="POST"):
        start_session(user, amr=["pwd"])
        response = app.process_response(app.make_response(""))

    cookie = _set_cookie(response.headers.getlist("Set-Cookie"))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Secure" not in cookie


def test_the_cookie_is_secure_with_an_https_issuer(app_factory: Any) -> None:
    https_app = app_factory(issuer="https://auth.example.com")
    with https_app.app_context():
        user = make_user()
        with https_app.test_request_context("/login", method="POST"):
            start_session(user, amr=["pwd"])
            response = https_app.process_response(https_app.make_response(""))

    assert "Secure" in _set_cookie(response.headers.getlist("Set-Cookie"))


def test_current_session_finds_the_session_by_cookie(app: Flask) -> None:
    login_session, token = sign_in(app)

    with with_cookie(app, token):
        assert current_session() == login_session
        assert current_user() == login_session.user


def test_current_session_is_cached_for_the_request(app: Flask) -> None:
    _, token = sign_in(app)

    with with_cookie(app, token):
        first = current_session()
        db.session.query(LoginSession).update({"revoked_at": utcnow()})
        db.session.commit()
        assert current_session() is first


def test_no_cookie_or_an_unknown_cookie_means_signed_out(app: Flask) -> None:
    sign_in(app)

    with app.test_request_context("/"):
        assert current_session() is None
    with with_cookie(app, "forged-token"):
        assert current_session() is None
    with with_cookie(app, "x" * 5000):
        assert current_session() is None


def test_an_expired_session_is_ignored_and_its_cookie_cleared(app: Flask) -> None:
    login_session, token = sign_in(app)
    login_session.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    with with_cookie(app, token):
        assert current_session() is None
        response = app.process_response(app.make_response(""))

    cleared = _set_cookie(response.headers.getlist("Set-Cookie"))
    assert "Max-Age=0" in cleared or "Expires=Thu, 01 Jan 1970" in cleared


def test_a_revoked_session_is_ignored(app: Flask) -> None:
    login_session, token = sign_in(app)
    login_session.revoked_at = utcnow()
    db.session.commit()

    with with_cookie(app, token):
        assert current_session() is None


def test_a_deactivated_user_is_signed_out(app: Flask) -> None:
    login_session, token = sign_in(app)
    login_session.user.is_active = False
    db.session.commit()

    with with_cookie(app, token):
        assert current_user() is None


def test_last_seen_is_written_at_most_once_a_minute(app: Flask) -> None:
    login_session, token = sign_in(app)
    recent = utcnow() - timedelta(seconds=30)
    login_session.last_seen_at = recent
    db.session.commit()

    with with_cookie(app, token):
        assert current_session() is not None
    db.session.expire_all()
    assert db.session.get(LoginSession, login_session.id).last_seen_at == recent

    stale = utcnow() - timedelta(minutes=5)
    db.session.get(LoginSession, login_session.id).last_seen_at = stale
    db.session.commit()
    with with_cookie(app, token):
        assert current_session() is not None
    db.session.expire_all()
    assert db.session.get(LoginSession, login_session.id).last_seen_at > stale


def test_signing_in_again_issues_a_new_id_and_revokes_the_old_one(app: Flask) -> None:
    first, first_token = sign_in(app)
    user = first.user

    with with_cookie(app, first_token):
        second = start_session(user, amr=["pwd"])
        response = app.process_response(app.make_response(""))
    new_token = _set_cookie(response.headers.getlist("Set-Cookie")).split(";")[0].split("=", 1)[1]

    assert second.id != first.id
    assert new_token != first_token
    db.session.expire_all()
    assert db.session.get(LoginSession, first.id).revoked_at is not None
    with with_cookie(app, first_token):
        assert current_session() is None
    with with_cookie(app, new_token):
        assert current_session() == second


def test_signing_in_drops_the_pre_authentication_flow_state(app: Flask) -> None:
    user = make_user()
    with app.test_request_context("/login", method="POST"):
        from flask import session

        session["csrf_token"] = "before"
        session["anything"] = "before"
        session["flow_pending_request"] = "kept"
        start_session(user, amr=["pwd"])
        assert dict(session) == {"flow_pending_request": "kept"}


def test_end_session_revokes_and_clears_the_cookie(app: Flask) -> None:
    login_session, token = sign_in(app)

    with with_cookie(app, token):
        end_session()
        assert current_session() is None
        response = app.process_response(app.make_response(""))

    assert db.session.get(LoginSession, login_session.id).revoked_at is not None
    cleared = _set_cookie(response.headers.getlist("Set-Cookie"))
    assert cleared.startswith(f"{COOKIE_NAME}=;")
    with with_cookie(app, token):
        assert current_session() is None


def test_auth_age_seconds(app: Flask) -> None:
    login_session, _ = sign_in(app)
    login_session.auth_time = utcnow() - timedelta(seconds=90)

    assert 90 <= auth_age_seconds(login_session) <= 92
    login_session.auth_time = utcnow() + timedelta(seconds=5)
    assert auth_age_seconds(login_session) == 0


def test_reading_the_session_never_commits(app: Flask) -> None:
    """A read path leaves the unit of work to its edge: last_seen_at is written, not committed."""
    login_session, token = sign_in(app)
    login_session.last_seen_at = utcnow() - timedelta(minutes=5)
    db.session.commit()
    commits: list[object] = []
    listener = commits.append
    event.listen(db.session, "after_commit", listener)
    try:
        with with_cookie(app, token):
            assert current_session() is not None
    finally:
        event.remove(db.session, "after_commit", listener)
    assert commits == []
    assert uow.has_writes(db.session())


def test_sid_is_stable_public_and_reveals_neither_the_id_nor_the_cookie(app: Flask) -> None:
    """Back-Channel Logout 1.0 section 2.1: `sid` names the session without giving it away."""
    from authserver.sessions.services import sid_of

    with app.app_context():
        login_session, cookie = sign_in(app)
        sid = sid_of(login_session.id)

        assert sid == sid_of(login_session.id)  # the same in every token of the session
        assert sid != sid_of(sign_in(app, user=login_session.user)[0].id)
        assert login_session.id not in sid and cookie not in sid
        assert login_session.id[:16] not in sid  # not even the account page's reference
        assert sid != hashlib.sha256(cookie.encode()).hexdigest()
        assert len(sid) == 32 and sid.replace("-", "").replace("_", "").isalnum()
