"""One serializer per resource: the JSON shape of a person, client, role, signing key and
organization, as the admin API documents it (openapi.json).

The admin API and the CLI's `--json` output use these; a surface may add fields of its
own, never rename these. Clients are serialized by `clients.services.client_metadata`
(RFC 7591 names), shared with RFC 7592 responses; here it gains its timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..accounts.models import Role, User
from ..clients.models import Client
from ..clients.services import client_metadata
from ..keys.services import KeyInfo
from ..orgs.models import Organization


def rfc3339(value: datetime | None) -> str | None:
    """A tz-aware time as RFC 3339 in UTC with a Z."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def serialize_user(user: User) -> dict[str, Any]:
    """A person: no password hash, no second-factor secret."""
    return {
        "sub": user.sub,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "is_active": user.is_active,
        "roles": user.role_names,
        "two_step_enabled": user.totp_enabled_at is not None,
        "created_at": rfc3339(user.created_at),
        "updated_at": rfc3339(user.updated_at),
    }


def serialize_client(client: Client) -> dict[str, Any]:
    """A client: its metadata with what only administrators see, never a secret."""
    metadata = client_metadata(client)
    metadata["created_at"] = rfc3339(client.created_at)
    metadata["updated_at"] = rfc3339(client.updated_at)
    return metadata


def serialize_role(role: Role) -> dict[str, Any]:
    """A role with its permissions."""
    return {
        "name": role.name,
        "description": role.description or "",
        "permissions": list(role.permissions or []),
        "builtin": bool(role.builtin),
    }


def serialize_key(key: KeyInfo) -> dict[str, Any]:
    """A signing key: public facts only, never key material."""
    return {
        "kid": key.kid,
        "alg": key.alg,
        "status": key.status,
        "created_at": rfc3339(key.created_at),
        "activates_at": rfc3339(key.activates_at),
        "retired_at": rfc3339(key.retired_at),
        "revoked_at": rfc3339(key.revoked_at),
        "unpublished_at": rfc3339(key.unpublished_at),
    }


def serialize_organization(organization: Organization) -> dict[str, Any]:
    """An organization: its slug (the `org_id` claim) and name."""
    return {
        "slug": organization.slug,
        "name": organization.name,
        "created_at": rfc3339(organization.created_at),
    }
