"""Admin actions on signing keys: list them, rotate them."""

from __future__ import annotations

from ...audit.actor import Actor
from ...keys.services import KeyInfo, current_keyring
from .base import AdminError, audit, who


def list_signing_keys() -> list[KeyInfo]:
    """Every stored signing key, newest first, with its status (keys.services.KeyInfo)."""
    return current_keyring().list_keys()


def rotate_signing_keys(
    alg: str | None = None,
    *,
    immediately: bool = False,
    emergency: bool = False,
    actor: Actor | None = None,
) -> list[str]:
    """Publish new signing keys for `alg` (or every algorithm); returns their kids.

    They sign after the pre-publication time, at once with `immediately`; `emergency`
    also revokes every older key of the algorithm (keys.services.KeyRing.rotate).
    """
    try:
        rows = current_keyring().rotate(alg, immediately=immediately, revoke=emergency)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    kids = [row.kid for row in rows]
    details = {"alg": alg, "kids": kids, "now": immediately or emergency, "emergency": emergency}
    audit("admin.keys.rotated", who(actor), subject=",".join(kids), details=details)
    return kids
