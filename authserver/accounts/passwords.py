"""Password hashing with argon2id (RFC 9106; OWASP Password Storage Cheat Sheet).

The cost comes from the config (`argon2_memory_cost` in KiB, `argon2_time_cost`),
with parallelism 1. One `PasswordHasher` per app is built on first use and kept in
`app.extensions`, so nothing is created at import time.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from ..core.secrets import new_token

_EXTENSION_KEY = "authserver.passwords"


class _Hashers:
    """The app's hasher and a dummy hash made with the same parameters."""

    def __init__(self, memory_cost: int, time_cost: int) -> None:
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=1, type=Type.ID
        )
        # Verified against when the e-mail is unknown, so a miss costs the same as a hit.
        self.dummy_hash = self.hasher.hash(new_token())


def _hashers() -> _Hashers:
    """The current app's hashers, built on first use."""
    hashers = current_app.extensions.get(_EXTENSION_KEY)
    if hashers is None:
        config = current_app.config["AUTHSERVER"]
        hashers = _Hashers(config.argon2_memory_cost, config.argon2_time_cost)
        current_app.extensions[_EXTENSION_KEY] = hashers
    return hashers


def hash_password(password: str) -> str:
    """Hash a password with argon2id and the configured cost."""
    return _hashers().hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; never raises for a bad hash."""
    try:
        return _hashers().hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_dummy(password: str) -> None:
    """Spend the time a real verification would, for an unknown or password-less account."""
    verify_password(_hashers().dummy_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the configured ones."""
    try:
        return _hashers().hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True
