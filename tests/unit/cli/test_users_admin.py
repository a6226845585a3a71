"""`authserver users list|disable|enable|set-password|add-role|remove-role`, each change audited."""

from __future__ import annotations

import json

from click.testing import Result
from flask import Flask
from sqlalchemy import select

from authserver.accounts.models import User
from authserver.accounts.passwords import verify_password
from authserver.audit.models import AuditEvent
from authserver.extensions import db
from authserver.oauth.models import Grant
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user
from tests.oauth_helpers import exchange, get_code, pkce_pair, sign_in

NEW_PASSWORD = "another long passphrase"


def run(app: Flask, *args: str, stdin: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def cli_events(name: str) -> list[AuditEvent]:
    db.session.rollback()
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == name))
    return [row for row in rows if (row.actor_type, row.actor) == ("system", "cli")]


def test_list_prints_people_with_roles_and_json(app: Flask) -> None:
    make_user(roles=["admin"])
    make_user("bob@example.com", roles=[])

    text = run(app, "users", "list")
    assert text.exit_code == 0
    assert "alice@example.com" in text.stdout and "admin" in text.stdout
    as_json = run(app, "users", "list", "--json")
    people = json.loads(as_json.stdout)
    assert [p["email"] for p in people] == ["alice@example.com", "bob@example.com"]
    assert people[0]["roles"] == ["admin"] and people[0]["is_active"] is True
    assert "password_hash" not in as_json.stdout and PASSWORD not in as_json.stdout


def test_disable_and_enable_are_audited(app: Flask) -> None:
    user = make_user()

    assert run(app, "users", "disable", "Alice@Example.com").exit_code == 0
    db.session.refresh(user)
    assert user.is_active is False
    assert [e.subject for e in cli_events("admin.user.disabled")] == [user.sub]

    assert run(app, "users", "enable", "alice@example.com").exit_code == 0
    db.session.refresh(user)
    assert user.is_active is True
    assert len(cli_events("admin.user.enabled")) == 1


def test_the_last_admin_cannot_be_disabled(app: Flask) -> None:
    user = make_user(roles=["admin"])
    result = run(app, "users", "disable", "alice@example.com")
    assert result.exit_code != 0
    assert "last active admin" in result.stderr
    db.session.refresh(user)
    assert user.is_active is True


def test_unknown_emails_fail_clearly(app: Flask) -> None:
    for args in (
        ["users", "disable", "ghost@example.com"],
        ["users", "enable", "ghost@example.com"],
        ["users", "set-password", "ghost@example.com", "--password", NEW_PASSWORD],
        ["users", "add-role", "ghost@example.com", "viewer"],
        ["users", "remove-role", "ghost@example.com", "viewer"],
    ):
        result = run(app, *args)
        assert result.exit_code == 1, args
        assert "no user with the e-mail address 'ghost@example.com'" in result.stderr


def test_set_password_ends_sessions_and_revokes_tokens(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client(skip_consent=True)
    browser = app.test_client()
    sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    assert exchange(browser, rp.client_id, secret, code, verifier).status_code == 200

    result = run(app, "users", "set-password", "alice@example.com", "--password-stdin",
                 stdin=NEW_PASSWORD + "\n")  # fmt: skip

    assert result.exit_code == 0, result.output
    db.session.rollback()
    db.session.refresh(user)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.password_changed_at is not None
    sessions = db.session.scalars(select(LoginSession)).all()
    assert sessions and all(s.revoked_at is not None for s in sessions)
    grants = db.session.scalars(select(Grant)).all()
    assert grants and all(g.revoked_at is not None for g in grants)
    (event,) = cli_events("admin.user.password_set")
    assert event.subject == user.sub
    assert NEW_PASSWORD not in json.dumps(event.details)


def test_set_password_refuses_a_weak_password(app: Flask) -> None:
    user = make_user()
    result = run(app, "users", "set-password", "alice@example.com", "--password", "short")
    assert result.exit_code == 1
    db.session.refresh(user)
    assert verify_password(user.password_hash, PASSWORD)
    assert cli_events("admin.user.password_set") == []


def test_add_and_remove_a_role(app: Flask) -> None:
    user = make_user()

    assert run(app, "users", "add-role", "alice@example.com", "developer").exit_code == 0
    db.session.refresh(user)
    assert user.role_names == ["developer"]
    assert cli_events("admin.user.role_added")[0].details == {"role": "developer"}

    assert run(app, "users", "remove-role", "alice@example.com", "developer").exit_code == 0
    db.session.refresh(user)
    assert user.role_names == []
    assert len(cli_events("admin.user.role_removed")) == 1


def test_unknown_or_unheld_roles_fail_clearly(app: Flask) -> None:
    make_user()
    unknown = run(app, "users", "add-role", "alice@example.com", "wizard")
    assert unknown.exit_code == 1 and "no such role" in unknown.stderr
    unheld = run(app, "users", "remove-role", "alice@example.com", "viewer")
    assert unheld.exit_code == 1 and "does not hold" in unheld.stderr
    gone = run(app, "users", "remove-role", "alice@example.com", "wizard")
    assert gone.exit_code == 1 and "no role named 'wizard'" in gone.stderr


def test_the_last_admin_keeps_the_admin_role(app: Flask) -> None:
    user = make_user(roles=["admin"])
    result = run(app, "users", "remove-role", "alice@example.com", "admin")
    assert result.exit_code == 1 and "last active admin" in result.stderr
    db.session.refresh(user)
    assert user.role_names == ["admin"]
    assert isinstance(db.session.get(User, user.id), User)
