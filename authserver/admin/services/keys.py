"""Admin actions on signing keys: list them, rotate them."""

from __future__ import annotations

from ...audit.actor import Actor
from ...keys.services import KeyInfo, current_keyring
from .base import AdminError, audit, who


def list_signing_keys() -> list[KeyInfo]:
    """Every stored signing key, newest first, with its status (keys.services.KeyInfo)."""
    return current_keyring().list_keys()


def rotate_signing_keys(alg: str | None = None, *, actor: Actor | None = None) -> list[str]:
    """Make new signing keys for `alg` (or every algorithm) and retire the old; returns new kids."""
    try:
        rows = current_keyring().rotate(alg)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    kids = [row.kid for row in rows]
    audit(
        "admin.keys.rotated", who(actor), subject=",".join(kids), details={"alg": alg, "kids": kids}
    )
    return kids
