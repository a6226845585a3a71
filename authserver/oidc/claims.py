"""OpenID Connect Core section 5: which claims about a person a client may receive, and where.

One rule decides every claim that leaves the server, in the id_token, at userinfo and in
access tokens (`release_claims`): a claim goes out only when the grant's scope covers it
(`covered_claims`). The grant's scope is already the client's registration, the person's
consent and what the person holds, intersected (oauth/consent.py). The `claims` request
parameter (section 5.5) only chooses where covered claims go; it never adds one.

Section 5.4 puts the scope claims at userinfo when an access token is issued, which is
what we do; a client registered with `claims_in_id_token` gets every covered claim in
the id_token as well (node-oidc-provider's `conformIdTokenClaims: false`, per client),
for apps that read only the id_token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..accounts.models import User
from ..orgs.services import ORG_SCOPE_PREFIX, organization_claims

# Section 5.4: the claims each scope value covers; `roles` is ours.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "updated_at"),
    "email": ("email", "email_verified"),
    "roles": ("roles",),
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
ORGANIZATION_CLAIMS = ("org_id", "org_roles")
# Where claims go: the ID Token, the UserInfo response, an RFC 9068 access token.
TARGETS = ("id_token", "userinfo", "access_token")


def covered_claims(scope: str, target: str, organization: str | None = None) -> frozenset[str]:
    """The claims `scope` covers in `target`; `organization` is the grant's (its slug).

    - id_token and userinfo: `sub`, the section 5.4 claims of each scope, `roles` with
      the `roles` scope, and `org_id`/`org_roles` with `roles` and the organization's
      own `org:<slug>` scope (they are the person's roles there);
    - access token: `roles` with the `roles` scope, and `org_id`/`org_roles` with the
      `org:<slug>` scope alone: acting in that organization is what the scope grants.
    """
    items = set(scope.split())
    names: set[str] = set()
    if target != "access_token":
        names.add("sub")
        for item in items:
            names.update(SCOPE_CLAIMS.get(item, ()))
    elif ROLES_SCOPE in items:
        names.add("roles")
    in_organization = organization is not None and ORG_SCOPE_PREFIX + organization in items
    if in_organization and (target == "access_token" or ROLES_SCOPE in items):
        names.update(ORGANIZATION_CLAIMS)
    return frozenset(names)


def available_claims(user: User, subject: str | None) -> dict[str, Any]:
    """Every claim we hold about this person, omitting empty ones (section 5.3.2).

    `subject` is the `sub` the receiving client knows the person by
    (oidc.subjects.subject_for, section 8); without one there is no `sub`.
    """
    claims: dict[str, Any] = {
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "updated_at": int(user.updated_at.timestamp()),
    }
    if user.name:
        claims["name"] = user.name
    if subject is not None:
        claims["sub"] = subject
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
    *,
    claims_in_id_token: bool = False,
    subject: str | None = None,
) -> dict[str, Any]:
    """The claims for `target` ("id_token", "userinfo" or "access_token") under this scope.

    Userinfo gets every covered claim (section 5.4: scope claims are returned there when
    an access token is issued); the id_token gets `sub`, the role claims of the `roles`
    scope and the covered claims the `claims` parameter asks for in its `id_token`
    member (section 5.5), or every covered claim for a client registered with
    `claims_in_id_token`; an access token its covered claims (never `sub`, which it has
    anyway, nor an empty `roles`). A person no longer in the grant's organization gets
    no organization claims: see `organization_claims`. `sub` is `subject`, the client's
    (oidc.subjects.subject_for).
    """
    organization = organization_claims(organization_id, user) or {}
    return claims_for(
        user,
        scope,
        target,
        organization,
        claims_request,
        claims_in_id_token=claims_in_id_token,
        subject=subject,
    )


def claims_for(
    user: User,
    scope: str,
    target: str,
    organization: Mapping[str, Any],
    claims_request: dict[str, Any] | None = None,
    *,
    claims_in_id_token: bool = False,
    subject: str | None = None,
) -> dict[str, Any]:
    """`release_claims` with the organization's claims already looked up (`org_id`, `org_roles`)."""
    if target not in TARGETS:
        raise ValueError(f"unknown claims target {target!r}")
    covered = covered_claims(scope, target, organization.get("org_id"))
    if target == "id_token" and not claims_in_id_token:
        asked = set(((claims_request or {}).get("id_token") or {}).keys())
        wanted = covered & (asked | {"sub", ROLES_SCOPE, *ORGANIZATION_CLAIMS})
    else:
        wanted = covered
    values: dict[str, Any] = available_claims(user, subject)
    if ROLES_SCOPE in wanted:
        values[ROLES_SCOPE] = user.role_names
    values.update(organization)
    released = {name: values[name] for name in sorted(wanted) if name in values}
    if target == "access_token":
        released.pop("sub", None)
        if not released.get(ROLES_SCOPE, True):
            del released[ROLES_SCOPE]
    return released
