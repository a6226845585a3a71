"""Stored signing keys: generating, storing and reading them (RFC 7517, RFC 7638 kids)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc.jwk import ECKey, KeyParameters, RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from ..core import capabilities
from .crypto import KeyCipher
from .models import SigningKey

Key = RSAKey | ECKey
# RFC 7518 section 3.1: the algorithms we sign with, and how to make a key for each.
SUPPORTED_ALGS = capabilities.SIGNING_ALGS
# RFC 7517 section 4: members of a private JWK that must never be published.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class Row:
    """A detached copy of a `SigningKey` row."""

    kid: str
    alg: str
    private_jwk_encrypted: str
    public_jwk: dict[str, Any]
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None


def read_rows(session: Session) -> list[Row]:
    """Every stored key, newest first (ties broken by kid, the same everywhere)."""
    keys = session.scalars(
        select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
    ).all()
    return [
        Row(
            k.kid,
            k.alg,
            k.private_jwk_encrypted,
            dict(k.public_jwk),
            k.created_at,
            k.activates_at,
            k.retired_at,
            k.revoked_at,
        )
        for k in keys
    ]


def revoke_keys(session: Session, algs: list[str], now: datetime) -> None:
    """Revoke every stored key of `algs` (an emergency rotation)."""
    session.execute(
        update(SigningKey)
        .where(SigningKey.alg.in_(algs), SigningKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def retire_keys(session: Session, algs: list[str], starts: datetime) -> None:
    """Whatever of `algs` would sign after `starts` stops there: a new key takes over."""
    session.execute(
        update(SigningKey)
        .where(
            SigningKey.alg.in_(algs),
            SigningKey.revoked_at.is_(None),
            or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > starts),
        )
        .values(retired_at=starts)
    )


def new_row(
    cipher: KeyCipher, key: Key, alg: str, now: datetime, *, activates_at: datetime
) -> SigningKey:
    """A `SigningKey` row for a freshly generated key, private part encrypted."""
    params = {"kid": key.kid, "alg": alg, "use": "sig"}
    private = {**key.as_dict(private=True), **params}
    public = public_members({**key.as_dict(private=False), **params})
    return SigningKey(
        kid=key.kid,
        alg=alg,
        private_jwk_encrypted=cipher.encrypt(json.dumps(private)),
        public_jwk=public,
        created_at=now,
        activates_at=activates_at,
        retired_at=None,
        revoked_at=None,
    )


def checked_alg(alg: str) -> str:
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    return alg


def generate(alg: str) -> Key:
    """A new private key for `alg`, its kid the RFC 7638 thumbprint."""
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    else:
        key = ECKey.generate_key("P-256", private=True)
    params: KeyParameters = {"kid": key.thumbprint(), "alg": alg, "use": "sig"}
    # Importing the native key object skips the slow JWK validation.
    return type(key).import_key(key.private_key, params)  # type: ignore[arg-type]


def import_private(jwk: dict[str, Any]) -> Key:
    """Import a stored private JWK (slow for RSA: about 50 ms of key validation)."""
    params: KeyParameters = {"kid": jwk["kid"], "alg": jwk["alg"], "use": "sig"}
    if jwk["kty"] == "RSA":
        return RSAKey.import_key(jwk, params)
    return ECKey.import_key(jwk, params)


def import_public(jwk: dict[str, Any]) -> Key:
    """Import a published public JWK; its kid, alg and use come along."""
    if jwk["kty"] == "RSA":
        return RSAKey.import_key(jwk)
    return ECKey.import_key(jwk)


def public_members(jwk: dict[str, Any]) -> dict[str, Any]:
    """A JWK without any private member, whatever was stored."""
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}
