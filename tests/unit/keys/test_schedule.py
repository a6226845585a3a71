"""keys.schedule: which key signs, and which are published, is decided by the clock alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from authserver.keys.schedule import (
    NEXT,
    PUBLISHED,
    RETIRED,
    RETIRING,
    REVOKED,
    SIGNING,
    signer_at,
    state_at,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PREPUBLISH = timedelta(hours=1)
WINDOW = timedelta(minutes=16)


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    activates_at: datetime
    retired_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def created_at(self) -> datetime:
        return self.activates_at - PREPUBLISH


def rotated(old: Key, kid: str, at: datetime) -> tuple[Key, Key]:
    """What `KeyRing.rotate` stores: the old key retires when the new one activates."""
    starts = at + PREPUBLISH
    return Key(old.kid, old.alg, old.activates_at, retired_at=starts), Key(kid, old.alg, starts)


def test_a_next_key_signs_only_from_its_activation() -> None:
    old, new = rotated(Key("k1", "ES256", T0), "k2", T0 + timedelta(days=1))
    starts = new.activates_at
    before, after = starts - timedelta(microseconds=1), starts

    assert signer_at([old, new], "ES256", before) == old
    assert (state_at(new, before, WINDOW), state_at(old, before, WINDOW)) == (NEXT, SIGNING)
    assert signer_at([old, new], "ES256", after) == new
    assert (state_at(new, after, WINDOW), state_at(old, after, WINDOW)) == (SIGNING, RETIRING)
    assert state_at(old, starts + WINDOW, WINDOW) == RETIRED
    assert signer_at([old, new], "RS256", after) is None


def test_at_every_moment_the_signer_is_one_the_published_set_holds() -> None:
    """An instance that read the table at any time since the rotation publishes every key
    any instance may sign with later, as long as the pre-publication lasts."""
    first = Key("k1", "ES256", T0)
    old, new = rotated(first, "k2", T0 + timedelta(minutes=5))
    stale = [first]  # an instance that read the table just before the rotation
    fresh = [old, new]
    for minute in range(0, 24 * 60, 7):
        now = T0 + timedelta(minutes=minute)
        published = {k.kid for k in fresh if state_at(k, now, WINDOW) in PUBLISHED}
        signers = {signer_at(fresh, "ES256", now)}
        # The stale instance reloads within its cache TTL, well inside the pre-publication.
        if now < T0 + timedelta(minutes=5) + timedelta(seconds=30):
            signers.add(signer_at(stale, "ES256", now))
        assert {s.kid for s in signers if s is not None} <= published, now


def test_a_revoked_key_neither_signs_nor_is_published() -> None:
    leaked = Key("k1", "ES256", T0, revoked_at=T0 + timedelta(hours=2))
    replacement = Key("k2", "ES256", T0 + timedelta(hours=2))
    now = T0 + timedelta(hours=3)

    assert state_at(leaked, now, WINDOW) == REVOKED
    assert REVOKED not in PUBLISHED
    assert signer_at([leaked, replacement], "ES256", now) == replacement


def test_two_keys_activated_together_agree_on_the_greatest_kid() -> None:
    a, b = Key("kA", "ES256", T0), Key("kB", "ES256", T0)
    assert signer_at([a, b], "ES256", T0) == signer_at([b, a], "ES256", T0) == b
