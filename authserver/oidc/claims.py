"""OpenID Connect Core section 5: which claims about a person each scope and request releases."""

from __future__ import annotations

import json
from typing import Any

from ..accounts.models import User

# Section 5.4: the claims each scope value requests.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "updated_at"),
    "email": ("email", "email_verified"),
}
SUPPORTED_CLAIMS = (
    "sub",
    "name",
    "updated_at",
    "email",
    "email_verified",
    "roles",
    "org_id",
    "org_roles",
)
# The `roles` scope releases the person's roles, and those held in the grant's organization,
# into both the id_token and userinfo.
ROLES_SCOPE = "roles"


def available_claims(user: User) -> dict[str, Any]:
    """Every claim we hold about this person, omitting empty ones (section 5.3.2)."""
    claims: dict[str, Any] = {
        "sub": user.sub,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "updated_at": int(user.updated_at.timestamp()),
    }
    if user.name:
        claims["name"] = user.name
    return claims


def parse_claims_request(raw: str | None) -> dict[str, Any] | None:
    """Section 5.5: the `claims` parameter, a JSON object with `userinfo` and `id_token` members.

    Raises ValueError when it is not such an object.
    """
    if raw is None or raw == "":
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("claims must be a JSON object")
    result: dict[str, Any] = {}
    for member in ("userinfo", "id_token"):
        requested = value.get(member)
        if requested is None:
            continue
        if not isinstance(requested, dict):
            raise ValueError(f"claims.{member} must be a JSON object")
        result[member] = {
            str(name): spec if isinstance(spec, dict) else None for name, spec in requested.items()
        }
    return result


def release_claims(
    user: User,
    scope: str,
    claims_request: dict[str, Any] | None,
    target: str,
    organization_id: int | None = None,
) -> dict[str, Any]:
    """The claims for `target` ("userinfo" or "id_token"): `sub`, plus what scope and request ask.

    Scope claims go to userinfo only (section 5.4, access token issued); claims asked
    for by name in the `claims` parameter go where they were asked for (section 5.5).
    """
    have = available_claims(user)
    names: set[str] = set()
    if target == "userinfo":
        for item in scope.split():
            names.update(SCOPE_CLAIMS.get(item, ()))
    if claims_request and "openid" in scope.split():
        names.update((claims_request.get(target) or {}).keys())
    released = {"sub": user.sub}
    released.update({name: have[name] for name in sorted(names) if name in have})
    if ROLES_SCOPE in scope.split():
        released.update(role_claims(user, organization_id))
    return released


def role_claims(user: User, organization_id: int | None) -> dict[str, Any]:
    """`roles`, and `org_id` with `org_roles` when the grant speaks for an organization."""
    from ..orgs.services import organization_claims

    claims: dict[str, Any] = {"roles": user.role_names}
    claims.update(organization_claims(organization_id, user) or {})
    return claims
