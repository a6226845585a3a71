"""`authserver cleanup` purges what is past its time and keeps everything still alive.

Rows just past their expiry stay for the grace period (a replayed code is still
recognised meanwhile); two runs at the same moment, as cron on two instances
would start them, delete each row once and fail on neither.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from authserver import maintenance
from authserver.accounts.models import AccountToken, AuthFailure, User
from authserver.audit.models import AuditEvent
from authserver.clients.models import Client
from authserver.extensions import db, utcnow
from authserver.mail.models import MailMessage
from authserver.maintenance import cleanup, cutoffs
from authserver.oauth.models import (
    AuthorizationCode,
    DeviceCode,
    Grant,
    RefreshToken,
    RevokedAccessToken,
)
from authserver.oidc.models import BackchannelLogout
from authserver.sessions.models import LoginSession
from tests.factories import REDIRECT_URI, make_client, make_user

LONG_AGO = timedelta(days=3)  # past the one-day grace period
JUST_NOW = timedelta(minutes=5)  # expired, but within the grace period
LATER = timedelta(hours=1)


def _hex() -> str:
    return secrets.token_hex(32)


def add_grant(user: User, client: Client, expires_at: datetime, **extra: Any) -> Grant:
    grant = Grant(
        id=secrets.token_hex(16),
        client_id=client.client_id,
        user_id=user.id,
        auth_time=utcnow(),
        expires_at=expires_at,
        **extra,
    )
    db.session.add(grant)
    db.session.flush()
    return grant


def add_refresh_token(grant: Grant, expires_at: datetime, **extra: Any) -> RefreshToken:
    token = RefreshToken(
        token_hash=_hex(),
        grant_id=grant.id,
        client_id=grant.client_id,
        expires_at=expires_at,
        **extra,
    )
    db.session.add(token)
    return token


def add_code(user: User, client: Client, expires_at: datetime) -> AuthorizationCode:
    code = AuthorizationCode(
        code_hash=_hex(),
        client_id=client.client_id,
        user_id=user.id,
        redirect_uri=REDIRECT_URI,
        code_challenge="x" * 43,
        code_challenge_method="S256",
        auth_time=utcnow(),
        expires_at=expires_at,
    )
    db.session.add(code)
    return code


def add_device_code(client: Client, expires_at: datetime) -> DeviceCode:
    row = DeviceCode(
        device_code_hash=_hex(),
        user_code=secrets.token_hex(4).upper(),
        client_id=client.client_id,
        expires_at=expires_at,
    )
    db.session.add(row)
    return row


def add_account_token(user: User, expires_at: datetime) -> AccountToken:
    row = AccountToken(
        token_hash=_hex(), purpose="reset_password", user_id=user.id, expires_at=expires_at
    )
    db.session.add(row)
    return row


def add_mail(status: str, created_at: datetime) -> MailMessage:
    row = MailMessage(
        template="reset_password",
        recipient="alice@example.com",
        subject="Reset",
        status=status,
        attempts=0,
        # A pending row waits for a retry later: nothing sends it during the test.
        next_attempt_at=utcnow() + LATER,
        created_at=created_at,
    )
    db.session.add(row)
    return row


def add_logout(client: Any, status: str, created_at: datetime) -> BackchannelLogout:
    row = BackchannelLogout(
        client_id=client.client_id,
        sub="someone",
        sid="a-session",
        jti=secrets.token_hex(8),
        status=status,
        attempts=0,
        next_attempt_at=utcnow() + LATER,
        created_at=created_at,
    )
    db.session.add(row)
    return row


def add_session(
    user: User, expires_at: datetime, revoked_at: datetime | None = None
) -> LoginSession:
    row = LoginSession(id=_hex(), user_id=user.id, expires_at=expires_at, revoked_at=revoked_at)
    db.session.add(row)
    return row


def add_audit_event(created_at: datetime) -> AuditEvent:
    row = AuditEvent(event="test.event", actor_type="system", created_at=created_at)
    db.session.add(row)
    return row


def count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def run_cleanup(app: Flask, *args: str) -> dict[str, int]:
    result = app.test_cli_runner().invoke(args=["cleanup", *args])
    assert result.exit_code == 0, result.output
    counts = {}
    for line in result.output.splitlines():
        table, number = line.split(": ")
        counts[table] = int(number)
    return counts


def test_cleanup_deletes_rows_past_their_time_and_keeps_live_ones(app: Flask) -> None:
    now = utcnow()
    user = make_user()
    client, _ = make_client()
    config = app.config["AUTHSERVER"]

    old_grant = add_grant(user, client, now - LONG_AGO)
    add_refresh_token(old_grant, now - LONG_AGO)  # goes with its grant
    live_grant = add_grant(user, client, now + LATER)
    revoked_grant = add_grant(user, client, now + LATER, revoked_at=now - LONG_AGO)
    keep = {
        "live_refresh": add_refresh_token(live_grant, now + LATER),
        "rotated_refresh": add_refresh_token(live_grant, now + LATER, used_at=now - LONG_AGO),
        "recent_expired_refresh": add_refresh_token(live_grant, now - JUST_NOW),
        "code": add_code(user, client, now + LATER),
        "recent_code": add_code(user, client, now - JUST_NOW),
        "device_code": add_device_code(client, now + LATER),
        "account_token": add_account_token(user, now + LATER),
        "session": add_session(user, now + LATER),
        "recently_revoked_session": add_session(user, now + LATER, revoked_at=now - JUST_NOW),
        "audit": add_audit_event(now - timedelta(days=config.audit_retention_days - 1)),
        "pending_mail": add_mail("pending", now - timedelta(days=config.mail_retention_days + 1)),
        "recent_mail": add_mail("sent", now - timedelta(days=config.mail_retention_days - 1)),
        "pending_logout": add_logout(client, "pending", now - LONG_AGO),
        "recent_logout": add_logout(client, "sent", now - JUST_NOW),
    }
    gone = {
        "expired_refresh": add_refresh_token(live_grant, now - LONG_AGO),
        "revoked_refresh": add_refresh_token(revoked_grant, now + LATER, revoked_at=now - LONG_AGO),
        "code": add_code(user, client, now - LONG_AGO),
        "device_code": add_device_code(client, now - LONG_AGO),
        "account_token": add_account_token(user, now - LONG_AGO),
        "expired_session": add_session(user, now - LONG_AGO),
        "revoked_session": add_session(user, now + LATER, revoked_at=now - LONG_AGO),
        "audit": add_audit_event(now - timedelta(days=config.audit_retention_days + 1)),
        "sent_mail": add_mail("sent", now - timedelta(days=config.mail_retention_days + 1)),
        "failed_mail": add_mail("failed", now - timedelta(days=config.mail_retention_days + 1)),
        "suppressed_mail": add_mail(
            "suppressed", now - timedelta(days=config.mail_retention_days + 1)
        ),
        "sent_logout": add_logout(client, "sent", now - LONG_AGO),
        "failed_logout": add_logout(client, "failed", now - LONG_AGO),
    }
    db.session.add_all(
        [
            RevokedAccessToken(jti="live", expires_at=now + LATER),
            RevokedAccessToken(jti="expired", expires_at=now - LONG_AGO),
            AuthFailure(user_id=user.id, factor="password", created_at=now),
            AuthFailure(
                user_id=user.id,
                factor="password",
                created_at=now - timedelta(seconds=config.lockout_duration + 60),
            ),
        ]
    )
    db.session.commit()
    kept_keys = {name: db.inspect(row).identity for name, row in keep.items()}
    gone_keys = {name: (type(row), db.inspect(row).identity) for name, row in gone.items()}
    live_grant_id, revoked_grant_id, old_grant_id = live_grant.id, revoked_grant.id, old_grant.id
    user_id = user.id
    db.session.expunge_all()

    counts = run_cleanup(app)

    assert counts == {
        "grants": 1,
        "refresh_tokens": 2,
        "authorization_codes": 1,
        "device_codes": 1,
        "revoked_access_tokens": 1,
        "account_tokens": 1,
        "login_sessions": 2,
        "auth_failures": 1,
        "audit_events": 1,
        "backchannel_logouts": 2,
        "mail_outbox": 3,
        "signing_keys": 0,
    }
    for name, (model, key) in gone_keys.items():
        assert db.session.get(model, key) is None, name
    for name, row in keep.items():
        assert db.session.get(type(row), kept_keys[name]) is not None, name
    assert db.session.get(Grant, old_grant_id) is None
    # A revoked grant stays until it expires: its tokens must keep introspecting as revoked.
    assert db.session.get(Grant, live_grant_id) is not None
    assert db.session.get(Grant, revoked_grant_id) is not None
    assert count(RefreshToken) == 3
    assert db.session.get(RevokedAccessToken, "live") is not None
    assert count(AuthFailure) == 1
    assert db.session.get(User, user_id) is not None

    assert set(run_cleanup(app).values()) == {0}, "a second run finds nothing left"


def test_cleanup_grace_period_is_an_option(app: Flask) -> None:
    user = make_user()
    client, _ = make_client()
    add_code(user, client, utcnow() - JUST_NOW)
    db.session.commit()

    assert run_cleanup(app)["authorization_codes"] == 0
    assert run_cleanup(app, "--grace", "0")["authorization_codes"] == 1
    assert count(AuthorizationCode) == 0


def test_cleanup_works_in_batches(app: Flask) -> None:
    old = utcnow() - timedelta(days=app.config["AUTHSERVER"].audit_retention_days + 1)
    for _ in range(25):
        add_audit_event(old)
    add_audit_event(utcnow())
    db.session.commit()

    assert run_cleanup(app, "--batch-size", "4")["audit_events"] == 25
    assert count(AuditEvent) == 1


def test_cleanup_rests_after_each_full_batch_as_the_pause_says(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = utcnow() - timedelta(days=app.config["AUTHSERVER"].audit_retention_days + 1)
    for _ in range(8):
        add_audit_event(old)
    db.session.commit()
    clock = itertools.count()
    rests: list[float] = []
    monkeypatch.setattr(maintenance, "monotonic", lambda: float(next(clock)))  # 1 s a batch
    monkeypatch.setattr(maintenance, "sleep", rests.append)

    assert run_cleanup(app, "--batch-size", "4", "--pause", "3")["audit_events"] == 8
    # Two full batches, each rested three times its second; the third found the table empty.
    assert rests == [3.0, 3.0]


@pytest.mark.commits  # two cleanups run on threads of their own
def test_two_cleanups_at_once_delete_each_row_once(app_factory: Any) -> None:
    apps = [app_factory(), app_factory()]
    with apps[0].app_context():
        user = make_user()
        client, _ = make_client()
        old = utcnow() - LONG_AGO
        for _ in range(120):
            add_code(user, client, old)
            add_session(user, old)
        for _ in range(5):
            add_code(user, client, utcnow() + LATER)
        db.session.commit()

    results: list[dict[str, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(apps))

    def run(app: Flask) -> None:
        try:
            with app.app_context():
                limits = cutoffs(app.config["AUTHSERVER"])
                start.wait(timeout=10)
                results.append(cleanup(limits, batch_size=10))
                db.session.remove()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(results) == 2
    assert sum(r["authorization_codes"] for r in results) == 120
    assert sum(r["login_sessions"] for r in results) == 120
    with apps[0].app_context():
        assert count(AuthorizationCode) == 5
        assert count(LoginSession) == 0
