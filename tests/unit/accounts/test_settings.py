"""The account page's services: names, passwords, sessions and connected apps."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.accounts import apps as account_apps
from authserver.accounts import settings
from authserver.accounts.models import AccountToken, User
from authserver.accounts.passwords import verify_password
from authserver.accounts.services import AccountError
from authserver.extensions import db, utcnow
from authserver.oauth.consent import remember_consent
from authserver.oauth.models import Consent, Grant, RefreshToken
from authserver.oauth.services import create_grant
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user

NEW_PASSWORD = "a brand new passphrase"


def login_session(user: User, *, expires_in: int = 3600, **extra: object) -> LoginSession:
    """A sign-in session row, as sessions.start_session stores it."""
    now = utcnow()
    row = LoginSession(
        id=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        auth_time=now,
        amr=["pwd"],
        expires_at=now + timedelta(seconds=expires_in),
        **extra,
    )
    db.session.add(row)
    db.session.commit()
    return row


def grant(user: User, client_id: str, scope: str = "openid email") -> Grant:
    """A live grant with one refresh token, committed."""
    row = create_grant(
        client_id=client_id, user_id=user.id, scope=scope, auth_time=utcnow(), amr=["pwd"]
    )
    row.expires_at = utcnow() + timedelta(days=1)
    db.session.add(
        RefreshToken(
            token_hash=secrets.token_hex(32),
            grant_id=row.id,
            client_id=client_id,
            scope=scope,
            expires_at=row.expires_at,
        )
    )
    db.session.commit()
    return row


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/124.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
            "Safari on iOS",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
            "Opera on Windows",
        ),
        ("curl/8.5.0", "curl"),
        ("Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1.0", "A browser on Linux"),
        ("Werkzeug/3.1.3", "Unknown device"),
        ("", "Unknown device"),
        (None, "Unknown device"),
    ],
)
def test_describe_device(user_agent: str | None, device: str) -> None:
    assert settings.describe_device(user_agent) == device


def test_update_name_collapses_spaces_and_bounds_the_length(app: Flask) -> None:
    user = make_user(name="Alice")
    settings.update_name(user, "  Alice \t Liddell  ")
    db.session.commit()  # the request's edge
    assert db.session.scalar(select(User.name)) == "Alice Liddell"
    with pytest.raises(AccountError):
        settings.update_name(user, "x" * (settings.MAX_NAME_LENGTH + 1))
    db.session.rollback()
    assert db.session.scalar(select(User.name)) == "Alice Liddell"


@pytest.mark.parametrize("address", [" Alice@Example.COM ", "not an address", "a@b@c"])
def test_request_new_email_refuses_the_current_or_an_invalid_address(
    app: Flask, address: str
) -> None:
    user = make_user()
    with pytest.raises(AccountError):
        settings.request_new_email(user, address, PASSWORD)
    assert db.session.scalar(select(AccountToken)) is None


@pytest.mark.parametrize(
    ("current", "new", "again", "field"),
    [
        ("wrong password", NEW_PASSWORD, NEW_PASSWORD, "current_password"),
        ("x" * 2000, NEW_PASSWORD, NEW_PASSWORD, "current_password"),
        (PASSWORD, "short", "short", "new_password"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + " ", "confirm_password"),
    ],
)
def test_change_password_refuses_and_changes_nothing(
    app: Flask, current: str, new: str, again: str, field: str
) -> None:
    user = make_user()
    mine = login_session(user)
    other = login_session(user)
    old_hash = user.password_hash
    with pytest.raises(settings.PasswordChangeError) as refused:
        settings.change_password(user, current, new, again, keep_session_id=mine.id)
    assert refused.value.field == field
    db.session.refresh(user)
    db.session.refresh(other)
    assert user.password_hash == old_hash
    assert user.password_changed_at is None
    assert other.revoked_at is None


def test_change_password_keeps_this_session_and_ends_the_rest(app: Flask) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    rp, _ = make_client()
    other_rp, _ = make_client(name="Other RP")
    mine, other = login_session(user), login_session(user)
    bobs = login_session(bob)
    grants = [grant(user, rp.client_id), grant(user, other_rp.client_id)]
    bobs_grant = grant(bob, rp.client_id)

    settings.change_password(user, PASSWORD, NEW_PASSWORD, NEW_PASSWORD, keep_session_id=mine.id)

    for row in (user, mine, other, bobs, *grants, bobs_grant):
        db.session.refresh(row)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.password_changed_at is not None
    assert mine.revoked_at is None
    assert other.revoked_at is not None
    assert all(row.revoked_at is not None for row in grants)
    tokens = db.session.scalars(select(RefreshToken).where(RefreshToken.grant_id == grants[0].id))
    assert all(token.revoked_at is not None for token in tokens)
    assert bobs.revoked_at is None
    assert bobs_grant.revoked_at is None


def test_session_summaries_list_live_sessions_and_mark_this_one(app: Flask) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    mine = login_session(user, ip="203.0.113.5", user_agent="curl/8.5.0")
    login_session(user, revoked_at=utcnow())
    login_session(user, expires_in=-1)
    login_session(bob)
    other = login_session(user)

    summaries = settings.session_summaries(user, mine.id)

    assert {summary.reference for summary in summaries} == {mine.id[:16], other.id[:16]}
    current = [summary for summary in summaries if summary.is_current]
    assert [(s.reference, s.device, s.ip) for s in current] == [
        (mine.id[:16], "curl", "203.0.113.5")
    ]


def test_find_session_only_finds_the_persons_own_live_sessions(app: Flask) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    mine = login_session(user)
    bobs = login_session(bob)
    ended = login_session(user, revoked_at=utcnow())

    assert settings.find_session(user, mine.id[:16]) is mine
    assert settings.find_session(user, bobs.id[:16]) is None
    assert settings.find_session(user, ended.id[:16]) is None
    assert settings.find_session(user, mine.id) is None  # the whole id is not a reference
    assert settings.find_session(user, mine.id[:15]) is None
    assert settings.find_session(user, "%" * 16) is None
    assert settings.find_session(user, mine.id[:16].upper()) is None


def test_revoke_session_and_the_others(app: Flask) -> None:
    user = make_user()
    mine, first, second = login_session(user), login_session(user), login_session(user)
    settings.revoke_session(first)
    assert first.revoked_at is not None and second.revoked_at is None
    settings.revoke_other_sessions(user, keep_session_id=mine.id)
    db.session.refresh(second)
    db.session.refresh(mine)
    assert second.revoked_at is not None
    assert mine.revoked_at is None


def test_connected_apps_join_consents_and_live_grants(app: Flask) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    consented, _ = make_client(name="Consented")
    first_party, _ = make_client(name="First party", skip_consent=True)
    revoked, _ = make_client(name="Revoked")
    bobs_app, _ = make_client(name="Bob's app")
    remember_consent(user.id, consented.client_id, "openid email")
    grant(user, consented.client_id, "openid offline_access")
    grant(user, first_party.client_id, "openid profile")
    old = grant(user, revoked.client_id)
    old.revoked_at = utcnow()
    db.session.commit()
    remember_consent(bob.id, bobs_app.client_id, "openid")

    apps = {app.name: app for app in account_apps.connected_apps(user)}

    assert set(apps) == {"Consented", "First party"}
    assert [scope for scope, _ in apps["Consented"].scopes] == [
        "openid",
        "email",
        "offline_access",
    ]
    assert ("profile", "See your name") in apps["First party"].scopes


def test_revoke_app_removes_consent_and_revokes_grants(app: Flask) -> None:
    user = make_user()
    rp, _ = make_client()
    other_rp, _ = make_client(name="Other RP")
    remember_consent(user.id, rp.client_id, "openid email")
    remember_consent(user.id, other_rp.client_id, "openid")
    revoked = [grant(user, rp.client_id), grant(user, rp.client_id)]
    kept = grant(user, other_rp.client_id)

    assert account_apps.revoke_app(user, rp.client_id) is True

    for row in (*revoked, kept):
        db.session.refresh(row)
    assert all(row.revoked_at is not None for row in revoked)
    assert kept.revoked_at is None
    consents = db.session.scalars(select(Consent.client_id)).all()
    assert consents == [other_rp.client_id]
    assert account_apps.revoke_app(user, rp.client_id) is False


def test_revoke_app_does_nothing_to_another_persons_app(app: Flask) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    rp, _ = make_client()
    remember_consent(bob.id, rp.client_id, "openid")
    bobs_grant = grant(bob, rp.client_id)

    assert account_apps.revoke_app(user, rp.client_id) is False

    db.session.refresh(bobs_grant)
    assert bobs_grant.revoked_at is None
    assert db.session.scalar(select(Consent.user_id)) == bob.id
