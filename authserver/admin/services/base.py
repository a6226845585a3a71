"""What every admin action shares: who acts, what they may do, the audit record, the refusal."""

from __future__ import annotations

from typing import Any

from ...accounts.models import User
from ...audit import record
from ...audit.actor import Actor
from ...roles import ceiling
from ...roles.permissions import allows


class AdminError(ValueError):
    """An admin action was refused; the message says why, in words fit for the console."""


def person_permissions(user: User | None) -> set[str]:
    """Every permission granted by the roles an active person holds (roles.ceiling)."""
    return set(ceiling.power_of_person(user))


def can_person(user: User | None, permission: str) -> bool:
    """True when one of the person's roles allows `permission` (roles/permissions.allows)."""
    return allows(ceiling.power_of_person(user), permission)


def is_staff(user: User | None) -> bool:
    """True when the person holds any admin permission at all (may open the console)."""
    return ceiling.is_staff(ceiling.power_of_person(user))


def who(actor: Actor | None) -> Actor:
    """The actor given, else the actor of the request (roles.ceiling.current_actor: what a
    view declared with audit.act_as, else the signed-in person; the system outside a request)."""
    return actor or ceiling.current_actor()


def audit(
    event: str,
    actor: Actor,
    *,
    subject: str | None = None,
    client_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the audit event of an admin action to the session (the caller commits)."""
    record(
        event,
        actor=actor.id,
        actor_type=actor.type,
        subject=subject,
        client_id=client_id,
        details=details or {},
    )
