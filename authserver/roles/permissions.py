"""Permissions: what a role allows. Roles are sets of these; `*` allows everything."""

from __future__ import annotations

from collections.abc import Iterable

ALL = "*"
PERMISSIONS: dict[str, str] = {
    "users:read": "See people and their roles",
    "users:write": "Create, disable and change people",
    "clients:read": "See clients",
    "clients:write": "Register, change and disable clients",
    "roles:read": "See roles",
    "roles:write": "Create and change roles",
    "keys:read": "See signing keys",
    "keys:write": "Rotate signing keys",
    "audit:read": "Read the audit log",
    "orgs:read": "See organizations",
    "orgs:write": "Create organizations and manage their members",
}
# The built-in roles, as migration 0005 leaves them.
BUILTIN_PERMISSIONS: dict[str, list[str]] = {
    "admin": [ALL],
    "developer": ["clients:read", "clients:write"],
    "viewer": sorted(p for p in PERMISSIONS if p.endswith(":read")),
}


def allows(granted: Iterable[str], permission: str) -> bool:
    """True when the granted permissions include `permission` (or everything)."""
    granted = set(granted)
    return ALL in granted or permission in granted
