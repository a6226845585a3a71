"""When each signing key is published, signs, and leaves the JWKS: one rule, by time.

RFC 7517 section 5 lets a key set hold several keys; OpenID Connect Core section 10.1.1
asks a rotating signer to publish the new key before using it, because relying parties
cache the key set. So a key's life is four spans on the wall clock, the same on every
instance whatever its cache holds:

    next      published, not signing yet      created_at   .. activates_at
    signing   published, signs                activates_at .. retired_at (its successor's
                                                             activates_at)
    retiring  published, no longer signs      retired_at   .. retired_at + publish window
    retired   not published; `prune` deletes it

A key revoked after a leak (`revoked_at`) is neither published nor used at once.

The signer of an algorithm at time t is the signing-state key with the latest
`activates_at` (`signer_at`). Every instance applies that rule to its cached rows at the
moment it signs, so a key becomes the signer at the same instant everywhere, and only
after it has been in every instance's published set for `prepublish` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

NEXT = "next"
SIGNING = "signing"
RETIRING = "retiring"
RETIRED = "retired"
REVOKED = "revoked"
STATES = (NEXT, SIGNING, RETIRING, RETIRED, REVOKED)
# The states whose keys the JWKS publishes and our own verification accepts.
PUBLISHED = frozenset({NEXT, SIGNING, RETIRING})


@dataclass(frozen=True)
class KeyInfo:
    """One stored key and where it is in its life, for `keys list` and the admin console."""

    kid: str
    alg: str
    created_at: datetime
    activates_at: datetime
    retired_at: datetime | None
    revoked_at: datetime | None
    # next, signing, retiring, retired or revoked.
    status: str
    # When it leaves the JWKS (None: not scheduled yet, or already gone).
    unpublished_at: datetime | None


class Scheduled(Protocol):
    """What the rule reads of a key (a stored row or its cached copy)."""

    @property
    def kid(self) -> str: ...
    @property
    def alg(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def activates_at(self) -> datetime: ...
    @property
    def retired_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...


K = TypeVar("K", bound=Scheduled)


def state_at(key: Scheduled, now: datetime, publish_window: timedelta) -> str:
    """The key's state at `now` (see the module docstring)."""
    if key.revoked_at is not None:
        return REVOKED
    if key.retired_at is not None and now >= key.retired_at:
        return RETIRING if now < key.retired_at + publish_window else RETIRED
    if now < key.activates_at:
        return NEXT
    return SIGNING


def signer_at(keys: Iterable[K], alg: str, now: datetime) -> K | None:
    """The key that signs `alg` at `now`: of the keys signing then, the latest activated.

    Ties (two instances racing to make a first key) go to the greatest kid, the same
    choice on every instance.
    """
    best: K | None = None
    for key in keys:
        if key.alg != alg or state_at(key, now, timedelta(0)) != SIGNING:
            continue
        if best is None or (key.activates_at, key.kid) > (best.activates_at, best.kid):
            best = key
    return best


def prunable(key: Scheduled, now: datetime, publish_window: timedelta) -> bool:
    """Whether `prune` may delete the key: retired, or revoked a publication window ago
    (a revoked key stays listed that long, so the operator sees what was revoked)."""
    state = state_at(key, now, publish_window)
    if state == REVOKED:
        return key.revoked_at is not None and now >= key.revoked_at + publish_window
    return state == RETIRED


def describe(key: Scheduled, now: datetime, publish_window: timedelta) -> KeyInfo:
    """The key's state and the times of its life."""
    state = state_at(key, now, publish_window)
    retired = key.retired_at
    gone = retired + publish_window if retired is not None and state in PUBLISHED else None
    return KeyInfo(
        key.kid, key.alg, key.created_at, key.activates_at, retired, key.revoked_at, state, gone
    )
