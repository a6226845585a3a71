"""Every security event is recorded by the real action: who, to whom, which client, from where.

The audit log never holds a secret: after whole flows, no token, code, password or
client secret appears anywhere in the stored events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.extensions import db, utcnow
from tests.factories import PASSWORD, make_client, make_user
from tests.functional.test_email_verification import confirm, verify_path
from tests.functional.test_password_reset import ask_for_link, choose_password, reset_path
from tests.functional.test_two_step import enrol, next_code, post_login, post_manage, submit_code
from tests.mail_helpers import Browser, SmtpServer, running_smtp
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, sign_in

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0"
IP = "203.0.113.9"
NEW_PASSWORD = "a completely new passphrase"
SESSION_REF_RE = re.compile(r'name="session" value="([0-9a-f]{16})"')


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def app(app_factory: Any, smtp: SmtpServer) -> Iterator[Flask]:
    app = app_factory(mail_url=smtp.url)
    app.test_client_class = Browser
    with app.app_context():
        yield app


def browser(app: Flask, ip: str = IP, user_agent: str = USER_AGENT) -> FlaskClient:
    """A browser with a known address and user agent, keeping its own CSRF token."""
    test_client = app.test_client()
    test_client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    return test_client


def events(prefix: str = "") -> list[AuditEvent]:
    """The stored events (committed: read in a fresh transaction), oldest first."""
    db.session.rollback()
    query = select(AuditEvent).where(AuditEvent.event.startswith(prefix)).order_by(AuditEvent.id)
    return list(db.session.scalars(query))


def only(name: str) -> AuditEvent:
    found = [event for event in events() if event.event == name]
    assert len(found) == 1, [event.event for event in events()]
    return found[0]


def assert_recent(event: AuditEvent) -> None:
    assert utcnow() - timedelta(seconds=30) <= event.created_at <= utcnow() + timedelta(seconds=1)


def post_login_as(test_client: FlaskClient, email: str, password: str) -> Any:
    page = test_client.get("/login")
    return test_client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )


def account_form(test_client: FlaskClient, path: str, **fields: str) -> Any:
    page = test_client.get("/account")
    assert page.status_code == 200
    return test_client.post(path, data={"csrf_token": csrf_token(page.text), **fields})


# Sign-in and sign-out


def test_a_sign_in_records_who_when_and_from_where(app: Flask) -> None:
    user = make_user()
    sign_in(browser(app))

    event = only("signin.success")
    assert (event.actor_type, event.actor, event.subject) == ("user", user.sub, user.sub)
    assert (event.ip, event.user_agent) == (IP, USER_AGENT)
    assert event.details == {"amr": ["pwd"]}
    assert_recent(event)


def test_a_wrong_password_records_a_failure_naming_the_person(app: Flask) -> None:
    user = make_user()
    response = post_login_as(browser(app), "Alice@example.com", "not the password")

    assert response.status_code == 200
    event = only("signin.failure")
    assert event.subject == user.sub
    assert event.actor is None and event.actor_type == "user"
    assert event.details == {"reason": "wrong_password", "email": "alice@example.com"}
    assert (event.ip, event.user_agent) == (IP, USER_AGENT)
    assert "not the password" not in json.dumps(event.details)


def test_an_unknown_address_records_the_attempted_address(app: Flask) -> None:
    post_login_as(browser(app), "nobody@example.com", PASSWORD)

    event = only("signin.failure")
    assert event.subject is None
    assert event.details == {"reason": "unknown_account", "email": "nobody@example.com"}


def test_a_disabled_account_records_why(app: Flask) -> None:
    user = make_user()
    user.is_active = False
    db.session.commit()
    post_login_as(browser(app), "alice@example.com", PASSWORD)

    assert only("signin.failure").details["reason"] == "account_disabled"


FORGED_LINE = (
    "x@example.com\n2026-01-01T00:00:00Z  admin.user.roles_changed        actor=user:root"
    "  subject=root  \x1b[2J\u202e"
)


def test_a_malformed_address_is_not_stored_as_typed(app: Flask) -> None:
    """Only a well-formed address is kept; a typed line break or escape never reaches the log."""
    post_login_as(browser(app), FORGED_LINE, PASSWORD)

    event = only("signin.failure")
    assert event.details == {"reason": "malformed_email"}
    assert "\n" not in json.dumps(event.details) and "root" not in json.dumps(event.details)


def test_audit_output_escapes_control_characters_everywhere(app: Flask) -> None:
    """CLI tail, console and JSON-lines export: one event is one line, escapes are inert."""
    from authserver.audit import record

    record("signin.failure", subject=FORGED_LINE, details={FORGED_LINE: FORGED_LINE})
    db.session.commit()

    tail = app.test_cli_runner().invoke(args=["audit", "tail", "-n", "5"])
    assert tail.exit_code == 0, tail.output
    lines = tail.stdout.splitlines()
    assert len(lines) == 1
    assert "\x1b" not in tail.stdout and "\u202e" not in tail.stdout
    assert "\\n2026-01-01" in lines[0] and "\\x1b[2J" in lines[0] and "\\u202e" in lines[0]

    export = app.test_cli_runner().invoke(args=["audit", "export"])
    assert len(export.stdout.splitlines()) == 1
    assert json.loads(export.stdout)["subject"] == FORGED_LINE

    admin = make_user(email="root@example.com", roles=["admin"])
    console = browser(app)
    sign_in(console, admin.email)
    page = console.get("/admin/audit")
    assert page.status_code == 200
    assert "\x1b" not in page.text and "\u202e" not in page.text
    assert "\\x1b[2J" in page.text


def test_sign_out_is_recorded(app: Flask) -> None:
    user = make_user()
    alice = browser(app)
    sign_in(alice)
    page = alice.get("/logout")
    alice.post("/logout", data={"csrf_token": csrf_token(page.text)})

    event = only("signout")
    assert (event.actor, event.subject, event.ip) == (user.sub, user.sub, IP)


# Two-step verification


def test_two_step_changes_and_failures_are_recorded(app: Flask) -> None:
    alice = browser(app)
    user, secret, recovery = enrol(alice)
    assert only("two_step.enabled").subject == user.sub
    assert post_manage(alice, "/account/two-step/recovery-codes").status_code == 200
    assert only("recovery_codes.regenerated").actor == user.sub

    other = browser(app)
    assert post_login(other).status_code == 302
    assert submit_code(other, "000000").status_code == 422
    failure = only("signin.two_step.failure")
    assert failure.subject == user.sub
    assert failure.details == {"method": "totp", "reason": "wrong_code"}
    assert submit_code(other, next_code(user.id, secret)).status_code == 302
    success = events("signin.success")[-1]
    assert success.subject == user.sub
    assert success.details == {"amr": ["pwd", "otp", "mfa"]}

    response = post_manage(alice, "/account/two-step/disable", credential=PASSWORD)
    assert response.status_code == 302
    assert only("two_step.disabled").subject == user.sub
    stored = json.dumps([event.details for event in events()])
    assert secret not in stored and not any(code in stored for code in recovery)


# The account page, reset and verification


def test_account_page_changes_are_recorded(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client(name="Photo Printer")
    assert secret is not None
    alice, laptop = browser(app), browser(app, "198.51.100.7", "Laptop/2.0")
    sign_in(alice)
    sign_in(laptop)
    verifier, challenge = pkce_pair()
    code, _ = get_code(alice, rp.client_id, challenge)
    assert exchange(alice, rp.client_id, secret, code, verifier).status_code == 200

    references = SESSION_REF_RE.findall(alice.get("/account").text)
    laptop_ref = next(ref for ref in references if "198.51.100.7" in _item_of(alice, ref))
    assert account_form(alice, "/account/sessions/sign-out", session=laptop_ref).status_code == 302
    revoked = only("session.revoked")
    assert (revoked.actor, revoked.subject, revoked.details) == (
        user.sub,
        user.sub,
        {"sessions": 1},
    )

    assert account_form(alice, "/account/apps/revoke", client_id=rp.client_id).status_code == 302
    withdrawn = only("consent.revoked")
    assert (withdrawn.subject, withdrawn.client_id, withdrawn.ip) == (user.sub, rp.client_id, IP)

    response = account_form(
        alice,
        "/account/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 302
    changed = only("password.changed")
    assert (changed.actor, changed.subject, changed.user_agent) == (user.sub, user.sub, USER_AGENT)
    stored = json.dumps([_row(event) for event in events()])
    for secret_value in (PASSWORD, NEW_PASSWORD, secret, code):
        assert secret_value not in stored


def _item_of(test_client: FlaskClient, reference: str) -> str:
    page = test_client.get("/account").text
    return next(item for item in page.split('<li class="item">') if reference in item)


def test_a_password_reset_is_recorded(app: Flask, smtp: SmtpServer) -> None:
    user = make_user()
    someone = browser(app)
    ask_for_link(someone, "alice@example.com")
    path = reset_path(smtp)
    assert choose_password(someone, path, NEW_PASSWORD).status_code == 200

    event = only("password.reset")
    assert (event.actor, event.subject, event.ip) == (user.sub, user.sub, IP)
    token = path.rsplit("/", 1)[1]
    assert token not in json.dumps([_row(event) for event in events()])


def test_a_verified_address_is_recorded(app: Flask, smtp: SmtpServer) -> None:
    from authserver.accounts.email_change import send_verification_email

    user = make_user(email_verified=False)
    send_verification_email(user)
    db.session.commit()  # the request's edge: the mail sender reads the outbox
    assert confirm(browser(app), verify_path(smtp)).status_code == 200

    event = only("email.verified")
    assert event.subject == user.sub
    assert event.details == {"email": "alice@example.com"}


# Tokens


def test_the_code_flow_records_consent_and_issued_tokens(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client()
    assert secret is not None
    alice = browser(app)
    sign_in(alice)
    verifier, challenge = pkce_pair()
    code, _ = get_code(alice, rp.client_id, challenge)

    consent = only("consent.granted")
    assert (consent.actor, consent.subject, consent.client_id) == (user.sub, user.sub, rp.client_id)
    assert consent.details == {"scope": "openid profile email offline_access"}

    response = exchange(alice, rp.client_id, secret, code, verifier)
    assert response.status_code == 200
    issued = only("token.issued")
    assert (issued.actor_type, issued.actor) == ("client", rp.client_id)
    assert (issued.subject, issued.client_id) == (user.sub, rp.client_id)
    assert (issued.ip, issued.user_agent) == (IP, USER_AGENT)
    assert issued.details == {
        "grant_type": "authorization_code",
        "scope": response.get_json()["scope"],
        "issued": ["access_token", "id_token", "refresh_token"],
    }
    assert_recent(issued)


def test_a_failed_token_request_records_nothing(app: Flask) -> None:
    make_user()
    rp, secret = make_client()
    assert secret is not None
    alice = browser(app)
    sign_in(alice)
    _, challenge = pkce_pair()
    code, _ = get_code(alice, rp.client_id, challenge)

    response = exchange(alice, rp.client_id, secret, code, "wrong-verifier" * 4)

    assert response.status_code == 400
    assert events("token.") == []


def test_refresh_reuse_and_revocation_are_recorded_without_secrets(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client(skip_consent=True)
    assert secret is not None
    alice = browser(app)
    sign_in(alice)
    verifier, challenge = pkce_pair()
    code, _ = get_code(alice, rp.client_id, challenge)
    first = exchange(alice, rp.client_id, secret, code, verifier).get_json()
    rotated = refresh(alice, rp.client_id, secret, first["refresh_token"])
    assert rotated.status_code == 200
    assert events("token.issued")[-1].details["grant_type"] == "refresh_token"

    reused = refresh(alice, rp.client_id, secret, first["refresh_token"])
    assert reused.status_code == 400
    reuse = only("refresh_token.reuse_detected")
    assert (reuse.actor, reuse.subject, reuse.client_id) == (rp.client_id, user.sub, rp.client_id)

    verifier, challenge = pkce_pair()
    code2, _ = get_code(alice, rp.client_id, challenge)
    second = exchange(alice, rp.client_id, secret, code2, verifier).get_json()
    for token in (second["access_token"], second["refresh_token"]):
        answer = alice.post(
            "/oauth2/revoke", data={"token": token}, headers=basic(rp.client_id, secret)
        )
        assert answer.status_code == 200
    revoked = events("token.revoked")
    assert [event.details["kind"] for event in revoked] == ["access_token", "refresh_token"]
    assert all(event.subject == user.sub for event in revoked)
    assert all(event.client_id == rp.client_id and event.ip == IP for event in revoked)

    secrets_used = [secret, PASSWORD, code, code2, verifier]
    for body in (first, rotated.get_json(), second):
        secrets_used += [body[name] for name in ("access_token", "refresh_token", "id_token")]
    stored = json.dumps([_row(event) for event in events()])
    assert all(value not in stored for value in secrets_used)


def test_a_replayed_code_is_recorded(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client(skip_consent=True)
    assert secret is not None
    alice = browser(app)
    sign_in(alice)
    verifier, challenge = pkce_pair()
    code, _ = get_code(alice, rp.client_id, challenge)
    assert exchange(alice, rp.client_id, secret, code, verifier).status_code == 200

    assert exchange(alice, rp.client_id, secret, code, verifier).status_code == 400

    replay = only("authorization_code.replayed")
    assert (replay.subject, replay.client_id, replay.actor_type) == (
        user.sub,
        rp.client_id,
        "client",
    )
    assert code not in json.dumps(_row(replay))


def test_client_credentials_tokens_are_recorded_without_a_subject(app: Flask) -> None:
    rp, secret = make_client(
        name="Billing", redirect_uris=(), grant_types=("client_credentials",), scope="api:read"
    )
    assert secret is not None
    response = browser(app).post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "api:read"},
        headers=basic(rp.client_id, secret),
    )
    assert response.status_code == 200, response.text

    issued = only("token.issued")
    assert (issued.actor, issued.subject, issued.client_id) == (rp.client_id, None, rp.client_id)
    assert issued.details["grant_type"] == "client_credentials"
    assert issued.details["issued"] == ["access_token"]


def refresh(test_client: FlaskClient, client_id: str, secret: str, token: str) -> Any:
    return test_client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=basic(client_id, secret),
    )


def _row(event: AuditEvent) -> dict[str, Any]:
    """Every stored column of an event, for scanning."""
    return {column.name: str(getattr(event, column.name)) for column in AuditEvent.__table__.c}
