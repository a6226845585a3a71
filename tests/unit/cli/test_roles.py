"""`authserver roles list|show|create|delete`: catalogue permissions only, built-ins stay."""

from __future__ import annotations

import json

from click.testing import Result
from flask import Flask
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.extensions import db
from authserver.roles.services import get_role
from tests.factories import make_user


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def cli_events(name: str) -> list[AuditEvent]:
    db.session.rollback()
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.event == name))
    return [row for row in rows if (row.actor_type, row.actor) == ("system", "cli")]


def test_list_shows_the_builtin_roles(app: Flask) -> None:
    text = run(app, "roles", "list")
    assert text.exit_code == 0
    assert all(name in text.stdout for name in ("admin", "developer", "viewer"))
    roles = json.loads(run(app, "roles", "list", "--json").stdout)
    by_name = {role["name"]: role for role in roles}
    assert by_name["admin"] == {
        "name": "admin", "description": by_name["admin"]["description"],
        "permissions": ["*"], "builtin": True,
    }  # fmt: skip


def test_create_show_and_delete_a_custom_role(app: Flask) -> None:
    created = run(
        app, "roles", "create", "auditor", "--permission", "audit:read",
        "--permission", "users:read", "--description", "Reads the log",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    role = get_role("auditor")
    assert role is not None and role.permissions == ["audit:read", "users:read"]
    assert cli_events("admin.role.created")[0].subject == "auditor"

    user = make_user()
    assert run(app, "users", "add-role", user.email, "auditor").exit_code == 0
    shown = json.loads(run(app, "roles", "show", "auditor", "--json").stdout)
    assert shown == {
        "name": "auditor", "description": "Reads the log",
        "permissions": ["audit:read", "users:read"], "builtin": False, "holders": 1,
    }  # fmt: skip
    assert "audit:read" in run(app, "roles", "show", "auditor").stdout

    assert run(app, "roles", "delete", "auditor").exit_code == 0
    db.session.rollback()
    assert get_role("auditor") is None
    assert len(cli_events("admin.role.deleted")) == 1


def test_unknown_permissions_are_refused(app: Flask) -> None:
    result = run(app, "roles", "create", "bad", "--permission", "users:destroy")
    assert result.exit_code == 1
    assert "unknown permission: users:destroy" in result.stderr
    assert get_role("bad") is None
    star = run(app, "roles", "create", "bad", "--permission", "*")
    assert star.exit_code == 1 and get_role("bad") is None


def test_duplicate_and_invalid_names_are_refused(app: Flask) -> None:
    assert run(app, "roles", "create", "admin").exit_code == 1
    invalid = run(app, "roles", "create", "Has Spaces")
    assert invalid.exit_code == 1 and "role name" in invalid.stderr


def test_builtin_roles_cannot_be_deleted(app: Flask) -> None:
    result = run(app, "roles", "delete", "viewer")
    assert result.exit_code == 1
    assert "cannot be deleted" in result.stderr
    assert get_role("viewer") is not None


def test_unknown_roles_fail_clearly(app: Flask) -> None:
    for command in ("show", "delete"):
        result = run(app, "roles", command, "wizard")
        assert result.exit_code == 1
        assert "no role named 'wizard'" in result.stderr
