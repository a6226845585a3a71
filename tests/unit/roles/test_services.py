"""Role services: built-in roles stay as seeded, custom roles take catalogue permissions."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.accounts.models import Role, User
from authserver.extensions import db
from authserver.orgs.membership import add_member
from authserver.orgs.services import create_organization
from authserver.roles.permissions import BUILTIN_PERMISSIONS, PERMISSIONS
from authserver.roles.services import (
    RoleError,
    assign_role,
    create_role,
    delete_role,
    effective_permissions,
    get_role,
    list_roles,
    remove_role,
    update_role,
)
from tests.factories import make_user


def test_the_builtin_roles_are_listed_first_with_their_permissions(app: Flask) -> None:
    create_role("auditor", permissions=["audit:read"])
    roles = list_roles()
    assert [role.name for role in roles] == ["admin", "developer", "viewer", "auditor"]
    for role in roles[:3]:
        assert role.builtin
        assert sorted(role.permissions) == sorted(BUILTIN_PERMISSIONS[role.name])


def test_a_custom_role_is_created_assigned_and_deleted(app: Flask) -> None:
    role = create_role(
        "auditor", description="  Reads   the log ", permissions=["audit:read", "users:read"]
    )
    assert (role.builtin, role.description) == (False, "Reads the log")
    assert role.permissions == ["audit:read", "users:read"]
    user = make_user()
    assign_role(user, "auditor")
    assign_role(user, "auditor")  # idempotent
    assert user.role_names == ["auditor"]
    assert effective_permissions(user) == ["audit:read", "users:read"]

    delete_role(role)
    db.session.expire_all()
    assert get_role("auditor") is None
    assert db.session.get(User, user.id).role_names == []  # type: ignore[union-attr]


def test_builtin_roles_cannot_be_deleted(app: Flask) -> None:
    for name in ("admin", "developer", "viewer"):
        role = get_role(name)
        assert role is not None
        with pytest.raises(RoleError, match="built-in"):
            delete_role(role)
    assert len(db.session.scalars(select(Role).where(Role.builtin.is_(True))).all()) == 3


def test_builtin_permissions_are_fixed_but_descriptions_change(app: Flask) -> None:
    developer = get_role("developer")
    assert developer is not None
    with pytest.raises(RoleError, match="fixed"):
        update_role(developer, permissions=["users:write"])
    update_role(developer, description="Registers apps")
    assert developer.description == "Registers apps"
    assert sorted(developer.permissions) == ["clients:read", "clients:write"]


def test_custom_roles_take_only_catalogue_permissions(app: Flask) -> None:
    with pytest.raises(RoleError, match="unknown permission"):
        create_role("wizard", permissions=["spells:cast"])
    with pytest.raises(RoleError, match="unknown permission"):
        create_role("superuser", permissions=["*"])
    role = create_role("helper", permissions=["users:read"])
    update_role(role, permissions=["users:read", "users:write"])
    assert role.permissions == ["users:read", "users:write"]


@pytest.mark.parametrize("name", ["", "Admin Team", "9lives", "x" * 65, "ünï"])
def test_role_names_are_token_friendly(app: Flask, name: str) -> None:
    with pytest.raises(RoleError):
        create_role(name)


def test_role_names_are_unique(app: Flask) -> None:
    create_role("auditor")
    with pytest.raises(RoleError, match="already exists"):
        create_role("auditor")
    with pytest.raises(RoleError, match="already exists"):
        create_role("viewer")


def test_a_role_held_in_an_organization_cannot_be_deleted(app: Flask) -> None:
    role = create_role("billing")
    add_member(create_organization("Acme"), make_user(), "billing")
    with pytest.raises(RoleError, match="organization"):
        delete_role(role)


def test_the_admin_role_grants_every_permission(app: Flask) -> None:
    admin = make_user(roles=["admin"])
    assert effective_permissions(admin) == sorted(PERMISSIONS)
    viewer = make_user("v@example.com", roles=["viewer"])
    assert effective_permissions(viewer) == sorted(p for p in PERMISSIONS if p.endswith(":read"))
    viewer.is_active = False
    assert effective_permissions(viewer) == []


def test_the_last_admin_keeps_the_admin_role(app: Flask) -> None:
    first = make_user(roles=["admin"])
    with pytest.raises(RoleError, match="last active admin"):
        remove_role(first, "admin")
    make_user("second@example.com", roles=["admin"])
    remove_role(first, "admin")
    assert first.role_names == []


def test_unknown_roles_cannot_be_assigned(app: Flask) -> None:
    with pytest.raises(RoleError, match="no such role"):
        assign_role(make_user(), "ghost")


def test_role_changes_are_audited(app: Flask) -> None:
    from authserver.audit.models import AuditEvent

    role = create_role("auditor", permissions=["audit:read"])
    assign_role(make_user(), "auditor")
    delete_role(role)
    events = db.session.scalars(select(AuditEvent.event).order_by(AuditEvent.id)).all()
    assert events == ["admin.role.created", "admin.user.role_added", "admin.role.deleted"]


def test_role_changes_leave_committing_to_the_caller(app: Flask) -> None:
    """STYLE.md "Transactions": the request or CLI command commits, not the service."""
    bob = make_user("bob@example.com")
    create_role("auditor", permissions=["audit:read"])
    assign_role(bob, "auditor")
    db.session.rollback()
    assert get_role("auditor") is None
    assert bob.role_names == []
