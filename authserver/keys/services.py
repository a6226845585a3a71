"""The key ring: signing keys loaded once per process, cached, and rotated on a schedule.

Importing an RSA private key costs about 50 ms (key validation), so key objects are
imported once and kept; the JWKS body is serialised once per reload. Every instance
re-reads the `signing_keys` table when its copy is older than `cache_ttl` seconds, and
at once when the revocation epoch (core/epoch.py) moved, which an emergency rotation
moves: a revoked key leaves every instance's signing and verification within a second.

Which key signs is decided by time (keys/schedule.py), on the cached rows, when a token
is signed. A rotation publishes the new key at once and lets it sign only
`key_prepublish_seconds` later, longer than every instance's cache and the JWKS's
max-age (config.py checks it): so no instance signs with a key that another instance's
JWKS, or a relying party's copy of it, lacks.

Publication (RFC 7517 section 5): a retired key stays in the JWKS until every token it
may have signed has expired: `retired_at` + `cache_ttl` (an instance that missed a
`--now` rotation signs with it that much longer) + the longest token lifetime + 60 s of
clock skew.
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

from flask import Flask, current_app, has_app_context
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..config import Config
from ..core import epoch
from ..extensions import db, utcnow
from .crypto import KeyCipher
from .models import SigningKey
from .schedule import (
    NEXT,
    PUBLISHED,
    SIGNING,
    KeyInfo,
    describe,
    prunable,
    signer_at,
    state_at,
)
from .storage import (
    PRIVATE_MEMBERS,
    SUPPORTED_ALGS,
    Key,
    Row,
    checked_alg,
    generate,
    import_private,
    import_public,
    new_row,
    public_members,
    read_rows,
    retire_keys,
    revoke_keys,
)

__all__ = ["PRIVATE_MEMBERS", "SUPPORTED_ALGS", "KeyInfo", "KeyRing", "current_keyring"]

log = logging.getLogger(__name__)

# Unknown `kid`s reload the table at most this often (seconds), so forged kids cannot
# make every request hit the database.
MISS_RELOAD_INTERVAL = 2.0
# Allowance for clock skew between us and token consumers (seconds).
CLOCK_SKEW = 60


@dataclass(frozen=True)
class _Snapshot:
    """What one reload of the table produced; replaced whole, never mutated."""

    loaded_at: float
    # The revocation epoch read before the rows (None when read outside an app).
    epoch: int | None
    rows: tuple[Row, ...]
    verifiers: dict[str, Key]
    jwks: tuple[dict[str, Any], ...]
    jwks_body: bytes


class KeyRing:
    """Signing and verification keys for one application, cached per process."""

    def __init__(self, app: Flask, clock: Callable[[], float] = time.monotonic) -> None:
        self._app = app
        self._config: Config = app.config["AUTHSERVER"]
        self._cipher = KeyCipher(self._config.secret_key, self._config.secret_key_fallbacks)
        # Monotonic clock for cache ages, wall clock for the key schedule; tests replace them.
        self.clock = clock
        self.wall: Callable[[], datetime] = utcnow
        self._lock = threading.RLock()
        self._snapshot: _Snapshot | None = None
        self._private: dict[str, Key] = {}
        self._last_miss_reload = float("-inf")
        self._engine: Engine | None = None
        # True once ensure_keys() succeeded in this process.
        self.ready = False

    # -- signing and verification -------------------------------------------------

    def signing_key(self, alg: str) -> tuple[str, Key]:
        """The key that signs `alg` now (keys/schedule.py) as (kid, private key).

        The first key of an algorithm is made on first use, signing at once: no relying
        party can hold a key set that lacks it, as there was none before.
        """
        row = signer_at(self._fresh(watch_epoch=True).rows, alg, self.wall())
        if row is None:
            row = self._create_signer(checked_alg(alg))
        return row.kid, self._private_key(row)

    def verification_key(self, kid: str) -> Key | None:
        """The published public key with this `kid`, or None."""
        if not isinstance(kid, str):
            return None
        key = self._fresh(watch_epoch=True).verifiers.get(kid)
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
            row = signer_at(self._fresh().rows, alg, self.wall()) or self._create_signer(alg)
            if row.kid not in self._private:
                self._cipher.decrypt(row.private_jwk_encrypted, kid=row.kid)
        self.ready = True

    def ensure_ready(self) -> None:
        """`ensure_keys()` once per process: before the first request that needs keys."""
        if not self.ready:
            self.ensure_keys()

    def rotate(
        self, alg: str | None = None, *, immediately: bool = False, revoke: bool = False
    ) -> list[SigningKey]:
        """Make a new key for `alg` (or every algorithm), published now.

        - scheduled (the default): it signs `key_prepublish_seconds` from now, when the
          key signing until then retires;
        - `immediately`: it signs now and the current signer retires now (relying parties
          holding a cached key set cannot verify its tokens until they fetch it again);
        - `revoke` (an emergency after a leak; implies `immediately`): every stored key
          of the algorithm is also revoked: unpublished, and its tokens, whoever signed
          them, refused at once. The revocation epoch moves, so every instance reloads
          its keys within a second (core/epoch.py).
        """
        algs = [checked_alg(alg)] if alg else list(SUPPORTED_ALGS)
        immediately = immediately or revoke
        with self._lock:
            made = [generate(a) for a in algs]
            now = self.wall()
            starts = now
            if not immediately:
                starts += timedelta(seconds=self._config.key_prepublish_seconds)
            with self._session() as session:
                # Update first: the autoflush of the new rows must not include them.
                if revoke:
                    revoke_keys(session, algs, now)
                    session.execute(epoch.BUMP, {"name": epoch.NAME})
                retire_keys(session, algs, starts)
                rows = [
                    self._new_row(key, a, now, activates_at=starts)
                    for key, a in zip(made, algs, strict=True)
                ]
                session.add_all(rows)
                session.commit()
            for key, row in zip(made, rows, strict=True):
                self._private[row.kid] = key
            self._reload()
        how = "revoking the previous keys" if revoke else f"signing from {starts:%Y-%m-%d %H:%M:%S}"
        log.info("rotated signing keys (%s): %s", how, ", ".join(f"{r.alg} {r.kid}" for r in rows))
        return rows

    def list_keys(self) -> list[KeyInfo]:
        """Every stored key, newest first, with its state and times."""
        now = self.wall()
        window = self._publish_window()
        return [describe(r, now, window) for r in self._read_rows()]

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
        """Delete the keys `schedule.prunable` names; returns how many."""
        now = self.wall()
        window = self._publish_window()
        gone = [r.kid for r in self._read_rows() if prunable(r, now, window)]
        if gone:
            with self._lock, self._session() as session:
                session.execute(delete(SigningKey).where(SigningKey.kid.in_(gone)))
                session.commit()
            self.refresh()
        return len(gone)

    # -- cache ----------------------------------------------------------------------

    def _fresh(self, *, watch_epoch: bool = False) -> _Snapshot:
        """The current snapshot, reloaded first if older than cache_ttl or, with
        `watch_epoch` in this app's context, if the revocation epoch moved since it was
        read (an emergency rotation moves it; core.epoch polls it once a second)."""
        at = self._epoch_now() if watch_epoch else None
        snapshot = self._snapshot
        if snapshot is not None and self._still_fresh(snapshot, at):
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and self._still_fresh(snapshot, at):
                return snapshot  # another thread reloaded while we waited
            try:
                return self._reload(at)
            except SQLAlchemyError:
                if snapshot is None:
                    raise
                # Keep serving the keys we have; try again in a few seconds.
                log.exception("could not reload signing keys; keeping the cached ones")
                retry_at = self.clock() - self._config.cache_ttl + MISS_RELOAD_INTERVAL
                self._snapshot = replace(snapshot, loaded_at=retry_at, epoch=at)
                return self._snapshot

    def _still_fresh(self, snapshot: _Snapshot, at: int | None) -> bool:
        young = self.clock() - snapshot.loaded_at < self._config.cache_ttl
        return young and (at is None or at == snapshot.epoch)

    def _epoch_now(self) -> int | None:
        """The revocation epoch (core.epoch) in a context of our app, else None."""
        if not has_app_context() or current_app.extensions.get(EXTENSION) is not self:
            return None
        return epoch.current()

    def _reload(self, at: int | None = None) -> _Snapshot:
        """Read the table and build a new snapshot (call with the lock held).

        `at` is the revocation epoch read before the table; without it the snapshot keeps
        the previous label (an older label costs at most one more reload).
        """
        previous = self._snapshot
        if at is None and previous is not None:
            at = previous.epoch
        now = self.wall()
        window = self._publish_window()
        rows = self._read_rows()
        published = [r for r in rows if state_at(r, now, window) in PUBLISHED]
        jwks = tuple(public_members(r.public_jwk) for r in published)
        known = previous.verifiers if previous is not None else {}
        verifiers = {jwk["kid"]: known.get(jwk["kid"]) or import_public(jwk) for jwk in jwks}
        # Keep private keys only of keys that sign now or will: retired secrets leave memory.
        may_sign = {r.kid for r in published if state_at(r, now, window) in (NEXT, SIGNING)}
        self._private = {k: v for k, v in self._private.items() if k in may_sign}
        self._snapshot = _Snapshot(
            loaded_at=self.clock(),
            epoch=at,
            rows=tuple(r for r in rows if r.revoked_at is None),
            verifiers=verifiers,
            jwks=jwks,
            jwks_body=json.dumps({"keys": list(jwks)}, separators=(",", ":")).encode(),
        )
        return self._snapshot

    def _create_signer(self, alg: str) -> Row:
        """Generate a signer for `alg` when none signs now; safe when processes race to do it."""
        with self._lock:
            row = signer_at(self._reload().rows, alg, self.wall())
            if row is not None:  # another thread or process made one meanwhile
                return row
            key = generate(alg)
            now = self.wall()
            with self._session() as session:
                session.add(self._new_row(key, alg, now, activates_at=now))
                session.commit()
            self._private[key.kid] = key  # type: ignore[index]
            row = signer_at(self._reload().rows, alg, self.wall())
            assert row is not None
            self._retire_others(alg, keep=row)
            log.info("generated %s signing key %s", alg, row.kid)
            return row

    def _retire_others(self, alg: str, keep: Row) -> None:
        """If two processes raced, retire the other keys that sign now but lost the tie."""
        now = self.wall()
        window = self._publish_window()
        others = [
            r.kid
            for r in self._read_rows()
            if r.alg == alg and r.kid != keep.kid and state_at(r, now, window) == SIGNING
        ]
        if not others:
            return
        with self._session() as session:
            session.execute(
                update(SigningKey)
                .where(SigningKey.kid.in_(others), SigningKey.retired_at.is_(None))
                .values(retired_at=now)
            )
            session.commit()
        self._reload()

    def _private_key(self, row: Row) -> Key:
        """Decrypt and import a signer's private key once; cached by kid."""
        key = self._private.get(row.kid)
        if key is None:
            jwk = json.loads(self._cipher.decrypt(row.private_jwk_encrypted, kid=row.kid))
            key = import_private(jwk)
            self._private[row.kid] = key
        return key

    def _publish_window(self) -> timedelta:
        """How long a retired key stays published (see the module docstring)."""
        config = self._config
        longest = max(config.access_token_ttl, config.id_token_ttl)
        return timedelta(seconds=config.cache_ttl + longest + CLOCK_SKEW)

    # -- storage --------------------------------------------------------------------

    def _new_row(self, key: Key, alg: str, now: datetime, *, activates_at: datetime) -> SigningKey:
        """A `SigningKey` row for a freshly generated key, private part encrypted."""
        return new_row(self._cipher, key, alg, now, activates_at=activates_at)

    def _read_rows(self) -> list[Row]:
        """Every stored key, newest first (ties broken by kid, the same everywhere)."""
        with self._session() as session:
            return read_rows(session)

    def _session(self) -> Session:
        """A session of our own: key writes never commit the caller's pending work."""
        if self._engine is None:
            with self._app.app_context():
                self._engine = db.engine
        return Session(self._engine, expire_on_commit=False)


# Where `keys.init_app` keeps the application's key ring.
EXTENSION = "authserver.keys"


def current_keyring(app: Flask | None = None) -> KeyRing:
    """The key ring of `app` (no application context needed), else of the current one."""
    return (app or current_app).extensions[EXTENSION]
