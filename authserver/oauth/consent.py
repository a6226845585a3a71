"""Remembered consent: what a person allowed each client, so they are asked only for new scopes."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from ..audit.services import record, sub_of
from ..extensions import db
from .models import Consent

# Plain words for the consent page; other scopes are shown by name.
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in with your account",
    "profile": "See your name",
    "email": "See your e-mail address",
    "offline_access": "Stay connected when you are not using it",
    "roles": "See your roles, here and in the organization you choose",
}
ORG_SCOPE_PREFIX = "org:"


def describe_scopes(scope: str) -> list[tuple[str, str]]:
    """(scope, plain words) for each requested scope, in request order."""
    return [(item, _describe(item)) for item in scope.split()]


def _describe(item: str) -> str:
    if item.startswith(ORG_SCOPE_PREFIX) and len(item) > len(ORG_SCOPE_PREFIX):
        return f"Act for you in the organization {item[len(ORG_SCOPE_PREFIX) :]}"
    return SCOPE_DESCRIPTIONS.get(item, item)


# Read on every authorization request of a signed-in person: built once.
CONSENTED_SCOPE = select(Consent.scope).where(
    Consent.user_id == bindparam("user_id"), Consent.client_id == bindparam("client_id")
)


def has_consent(user_id: int, client_id: str, scope: str) -> bool:
    """True when every requested scope was allowed before."""
    allowed = db.session.scalar(CONSENTED_SCOPE, {"user_id": user_id, "client_id": client_id})
    if allowed is None:
        return False
    return set(scope.split()) <= set(allowed.split())


def remember_consent(user_id: int, client_id: str, scope: str) -> None:
    """Add these scopes to what the person allowed this client; commits."""
    row = db.session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    if row is None:
        row = Consent(user_id=user_id, client_id=client_id, scope="")
        db.session.add(row)
    row.scope = " ".join(sorted(set(row.scope.split()) | set(scope.split())))
    record(
        "consent.granted", subject=sub_of(user_id), client_id=client_id, details={"scope": scope}
    )
    db.session.commit()
