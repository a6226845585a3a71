"""The key ring: signing keys loaded once per process, cached, and rotated.

Importing an RSA private key costs about 50 ms (key validation), so key objects are
imported once and kept; the JWKS body is serialised once per reload. Every instance
re-reads the `signing_keys` table when its copy is older than `cache_ttl` seconds, so
several workers converge after a rotation on any one of them.

Publication (RFC 7517 section 5): a retired key stays in the JWKS until every token it
may have signed has expired: `retired_at` + `cache_ttl` (other instances may sign with
it that much longer) + the longest token lifetime + 60 s of clock skew.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from joserfc.jwk import ECKey, KeyParameters, RSAKey
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..config import Config
from ..core import capabilities
from ..extensions import db, utcnow
from .crypto import KeyCipher
from .models import SigningKey

log = logging.getLogger(__name__)

Key = RSAKey | ECKey
# RFC 7518 section 3.1: the algorithms we sign with, and how to make a key for each.
SUPPORTED_ALGS = capabilities.SIGNING_ALGS
# RFC 7517 section 4: members of a private JWK that must never be published.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Unknown `kid`s reload the table at most this often (seconds), so forged kids cannot
# make every request hit the database.
MISS_RELOAD_INTERVAL = 2.0
# Allowance for clock skew between us and token consumers (seconds).
CLOCK_SKEW = 60

ACTIVE = "active"
RETIRED_PUBLISHED = "retired-published"
EXPIRED = "expired"


@dataclass(frozen=True)
class KeyInfo:
    """One stored key and where it is in its life, for `authserver keys list`."""

    kid: str
    alg: str
    created_at: datetime
    retired_at: datetime | None
    status: str


@dataclass(frozen=True)
class _Row:
    """A detached copy of a `SigningKey` row."""

    kid: str
    alg: str
    private_jwk_encrypted: str
    public_jwk: dict[str, Any]
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class _Snapshot:
    """What one reload of the table produced; replaced whole, never mutated."""

    loaded_at: float
    signers: dict[str, _Row]
    verifiers: dict[str, Key]
    jwks: tuple[dict[str, Any], ...]
    jwks_body: bytes


class KeyRing:
    """Signing and verification keys for one application, cached per process."""

    def __init__(self, app: Flask, clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._config: Config = app.config["AUTHSERVER"]
        self._cipher = KeyCipher(self._config.secret_key, self._config.secret_key_fallbacks)
        # Monotonic clock for cache ages; tests may replace it.
        self.clock = clock
        self._lock = threading.RLock()
        self._snapshot: _Snapshot | None = None
        self._private: dict[str, Key] = {}
        self._last_miss_reload = float("-inf")
        self._engine: Engine | None = None
        # True once ensure_keys() succeeded in this process.
        self.ready = False

    # -- signing and verification -------------------------------------------------

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """The newest active key for `alg` as (kid, private key); made on first use."""
        row = self._fresh().signers.get(alg)
        if row is None:
            row = self._create_signer(_checked_alg(alg))
        return row.kid, self._private_key(row)

    def verification_key(self, kid: str) -> Key | None:
        """The published public key with this `kid`, or None."""
        if not isinstance(kid, str):
            return None
        key = self._fresh().verifiers.get(kid)
        if key is None and self.clock() - self._last_miss_reload >= MISS_RELOAD_INTERVAL:
            with self._lock:
                if self.clock() - self._last_miss_reload >= MISS_RELOAD_INTERVAL:
                    self._last_miss_reload = self.clock()
                    key = self._reload().verifiers.get(kid)
        return key

    def jwks(self) -> dict[str, Any]:
        """RFC 7517 section 5: the published key set, public members only."""
        return {"keys": [dict(jwk) for jwk in self._fresh().jwks]}

    def jwks_json(self) -> bytes:
        """The JWKS document, serialised once per reload."""
        return self._fresh().jwks_body

    # -- management -----------------------------------------------------------------

    def ensure_keys(self) -> None:
        """Make sure an RS256 and an ES256 signer exist and decrypt with our secret."""
        for alg in SUPPORTED_ALGS:
            row = self._fresh().signers.get(alg) or self._create_signer(alg)
            if row.kid not in self._private:
                self._cipher.decrypt(row.private_jwk_encrypted, kid=row.kid)
        self.ready = True

    def ensure_ready(self) -> None:
        """`ensure_keys()` once per process: before the first request that needs keys."""
        if not self.ready:
            self.ensure_keys()

    def rotate(self, alg: str | None = None) -> list[SigningKey]:
        """Make new signers for `alg` (or every algorithm) and retire the previous ones."""
        algs = [_checked_alg(alg)] if alg else list(SUPPORTED_ALGS)
        with self._lock:
            made = [_generate(a) for a in algs]
            now = utcnow()
            with self._session() as session:
                # Retire first: the autoflush of the new rows must not include them.
                session.execute(
                    update(SigningKey)
                    .where(SigningKey.alg.in_(algs), SigningKey.retired_at.is_(None))
                    .values(retired_at=now)
                )
                rows = [self._new_row(key, a, now) for key, a in zip(made, algs, strict=True)]
                session.add_all(rows)
                session.commit()
            for key, row in zip(made, rows, strict=True):
                self._private[row.kid] = key
            self._reload()
        log.info("rotated signing keys: %s", ", ".join(f"{r.alg} {r.kid}" for r in rows))
        return rows

    def list_keys(self) -> list[KeyInfo]:
        """Every stored key, newest first, with its status."""
        now = utcnow()
        return [
            KeyInfo(r.kid, r.alg, r.created_at, r.retired_at, self._status(r, now))
            for r in self._read_rows()
        ]

    def refresh(self) -> None:
        """Re-read the table now, whatever the age of the cache."""
        with self._lock:
            self._reload()

    def reencrypt_all(self) -> int:
        """Re-encrypt every private key under the current secret; returns how many.

        Run after moving the old secret to AUTHSERVER_SECRET_KEY_FALLBACKS; once it
        has run everywhere, the fallback can be dropped.
        """
        with self._lock, self._session() as session:
            keys = session.scalars(select(SigningKey)).all()
            for key in keys:
                key.private_jwk_encrypted = self._cipher.reencrypt(
                    key.private_jwk_encrypted, kid=key.kid
                )
            session.commit()
            return len(keys)

    def prune(self) -> int:
        """Delete retired keys that no unexpired token can refer to; returns how many."""
        now = utcnow()
        expired = [r.kid for r in self._read_rows() if self._status(r, now) == EXPIRED]
        if expired:
            with self._lock, self._session() as session:
                session.execute(delete(SigningKey).where(SigningKey.kid.in_(expired)))
                session.commit()
            self.refresh()
        return len(expired)

    # -- cache ----------------------------------------------------------------------

    def _fresh(self) -> _Snapshot:
        """The current snapshot, reloaded first if older than cache_ttl."""
        snapshot = self._snapshot
        if snapshot is not None and self.clock() - snapshot.loaded_at < self._config.cache_ttl:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and (
                self.clock() - snapshot.loaded_at < self._config.cache_ttl
            ):
                return snapshot  # another thread reloaded while we waited
            try:
                return self._reload()
            except SQLAlchemyError:
                if snapshot is None:
                    raise
                # Keep serving the keys we have; try again in a few seconds.
                log.exception("could not reload signing keys; keeping the cached ones")
                retry_at = self.clock() - self._config.cache_ttl + MISS_RELOAD_INTERVAL
                self._snapshot = _replace_loaded_at(snapshot, retry_at)
                return self._snapshot

    def _reload(self) -> _Snapshot:
        """Read the table and build a new snapshot (call with the lock held)."""
        now = utcnow()
        rows = self._read_rows()
        signers: dict[str, _Row] = {}
        for row in rows:  # newest first, so the first active row per alg wins
            if row.retired_at is None and row.alg not in signers:
                signers[row.alg] = row
        published = [r for r in rows if self._status(r, now) != EXPIRED]
        jwks = tuple(_public_members(r.public_jwk) for r in published)
        verifiers = {jwk["kid"]: _import_public(jwk) for jwk in jwks}
        # Drop private keys no longer signing, so retired secrets leave memory.
        signer_kids = {r.kid for r in signers.values()}
        self._private = {k: v for k, v in self._private.items() if k in signer_kids}
        self._snapshot = _Snapshot(
            loaded_at=self.clock(),
            signers=signers,
            verifiers=verifiers,
            jwks=jwks,
            jwks_body=json.dumps({"keys": list(jwks)}, separators=(",", ":")).encode(),
        )
        return self._snapshot

    def _create_signer(self, alg: str) -> _Row:
        """Generate the first signer for `alg`; safe when processes race to do it."""
        with self._lock:
            row = self._reload().signers.get(alg)
            if row is not None:  # another thread or process made one meanwhile
                return row
            key = _generate(alg)
            with self._session() as session:
                session.add(self._new_row(key, alg, utcnow()))
                session.commit()
            self._private[key.kid] = key  # type: ignore[index]
            row = self._reload().signers[alg]
            self._retire_others(alg, keep=row.kid)
            log.info("generated %s signing key %s", alg, row.kid)
            return row

    def _retire_others(self, alg: str, keep: str) -> None:
        """If two processes raced, retire every active key but the newest one."""
        others = [
            r.kid for r in self._read_rows() if r.alg == alg and not r.retired_at and r.kid != keep
        ]
        if not others:
            return
        with self._session() as session:
            session.execute(
                update(SigningKey)
                .where(SigningKey.kid.in_(others), SigningKey.retired_at.is_(None))
                .values(retired_at=utcnow())
            )
            session.commit()
        self._reload()

    def _private_key(self, row: _Row) -> Key:
        """Decrypt and import a signer's private key once; cached by kid."""
        key = self._private.get(row.kid)
        if key is None:
            jwk = json.loads(self._cipher.decrypt(row.private_jwk_encrypted, kid=row.kid))
            key = _import_private(jwk)
            self._private[row.kid] = key
        return key

    def _status(self, row: _Row, now: datetime) -> str:
        if row.retired_at is None:
            return ACTIVE
        return RETIRED_PUBLISHED if now < row.retired_at + self._publish_window() else EXPIRED

    def _publish_window(self) -> timedelta:
        """How long a retired key stays published (see the module docstring)."""
        config = self._config
        longest = max(config.access_token_ttl, config.id_token_ttl)
        return timedelta(seconds=config.cache_ttl + longest + CLOCK_SKEW)

    # -- storage --------------------------------------------------------------------

    def _new_row(self, key: Key, alg: str, now: datetime) -> SigningKey:
        """A `SigningKey` row for a freshly generated key, private part encrypted."""
        params = {"kid": key.kid, "alg": alg, "use": "sig"}
        private = {**key.as_dict(private=True), **params}
        public = _public_members({**key.as_dict(private=False), **params})
        return SigningKey(
            kid=key.kid,
            alg=alg,
            private_jwk_encrypted=self._cipher.encrypt(json.dumps(private)),
            public_jwk=public,
            created_at=now,
            retired_at=None,
        )

    def _read_rows(self) -> list[_Row]:
        """Every stored key, newest first (ties broken by kid, the same everywhere)."""
        with self._session() as session:
            keys = session.scalars(
                select(SigningKey).order_by(SigningKey.created_at.desc(), SigningKey.kid.desc())
            ).all()
            return [
                _Row(
                    k.kid,
                    k.alg,
                    k.private_jwk_encrypted,
                    dict(k.public_jwk),
                    k.created_at,
                    k.retired_at,
                )
                for k in keys
            ]

    def _session(self) -> Session:
        """A session of our own: key writes never commit the caller's pending work."""
        if self._engine is None:
            with self._app.app_context():
                self._engine = db.engine
        return Session(self._engine, expire_on_commit=False)


def _checked_alg(alg: str) -> str:
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SUPPORTED_ALGS}")
    return alg


def _generate(alg: str) -> Key:
    """A new private key for `alg`, its kid the RFC 7638 thumbprint."""
    key: Key
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    else:
        key = ECKey.generate_key("P-256", private=True)
    params: KeyParameters = {"kid": key.thumbprint(), "alg": alg, "use": "sig"}
    # Importing the native key object skips the slow JWK validation.
    return type(key).import_key(key.private_key, params)  # type: ignore[arg-type]


def _import_private(jwk: dict[str, Any]) -> Key:
    """Import a stored private JWK (slow for RSA: about 50 ms of key validation)."""
    params: KeyParameters = {"kid": jwk["kid"], "alg": jwk["alg"], "use": "sig"}
    if jwk["kty"] == "RSA":
        return RSAKey.import_key(jwk, params)
    return ECKey.import_key(jwk, params)


def _import_public(jwk: dict[str, Any]) -> Key:
    """Import a published public JWK; its kid, alg and use come along."""
    if jwk["kty"] == "RSA":
        return RSAKey.import_key(jwk)
    return ECKey.import_key(jwk)


def _public_members(jwk: dict[str, Any]) -> dict[str, Any]:
    """A JWK without any private member, whatever was stored."""
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}


def _replace_loaded_at(snapshot: _Snapshot, loaded_at: float) -> _Snapshot:
    return replace(snapshot, loaded_at=loaded_at)


# Where `keys.init_app` keeps the application's key ring.
EXTENSION = "authserver.keys"


def current_keyring(app: Flask | None = None) -> KeyRing:
    """The key ring of `app` (no application context needed), else of the current one."""
    return (app or current_app).extensions[EXTENSION]
