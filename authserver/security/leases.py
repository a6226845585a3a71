"""Sliding window counters on Redis, hit through leases: exact near a limit, cheap far below it.

The counters are the `limits` library's sliding window counters (its keys, its window
shift, its weighted count: `floor(previous * previous_ttl / expiry) + current`), so its
`get_window_stats` reads them for Retry-After, and a hit that asks Redis is admitted
exactly when the library would admit it. What changes is how often a process asks.

Each sync is one round trip (one script, atomic): it counts the hit that asked, and when
that hit is admitted it also *reserves* a lease of `credit = (limit - weighted - 1) // K`
further hits (K = LEASE_SHARE) by adding them to the window's counter at once. The
process then admits that many hits of the key from memory, and asks again when its
credit is spent or its window ends (a lapsed lease's unused credit is given back to the
window it was reserved in, at that next sync). Near a limit the credit falls to 0 and
every hit asks Redis: exact, as before. Limits slower than one request a second on
average (the pages' 20/minute;300/hour) are always counted exactly: `lease_share`.

The bound. Redis's counter of a window is never below what the processes admitted in it
(credit is counted when reserved, not when used), so leases never admit more than the
limit, whatever the number of processes counting a key; the only excess is the sliding
window approximation the library already makes. The price is the other way round: credit
reserved and not yet used counts against every process. A request can be refused while
other processes still hold unused credit for the same key: each lease is at most 1/K of
what was left when it was taken, so P processes hold at most `1 - (1 - 1/K)**P` of it
(P = 4: 23%; P = 16: 64%), and only while they do not see the client again: a process
that does admits from its lease; one whose window ended gives it back at its next sync.
Forgetting a lease (a full table, a fork, a crash, a failed sync) only refuses sooner.
Why reserve: leases counted only once used (each sync adding the hits admitted since the
last) are sized from a count that misses the other processes' unsynced hits, and let
them overshoot: 16 processes with K = 16 admitted 1.6 times the limit in a simulation.

A client far below its limit costs one round trip per about `remaining / K` hits (a
600/minute budget: one per ~37 requests at first); the leases live in a dict guarded by
one lock, since a process may serve from several threads.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import RedisStorage

# A sync reserves at most this share (1/K) of what is left of a limit.
LEASE_SHARE = 16
# Leases a process holds at most; past it the oldest is forgotten (its credit stays counted).
MAX_LEASES = 10_000

# acquire_sliding_window.lua from the limits library (its window shift and weighted count),
# with a lease: give back a lapsed lease's unused credit, count the hit, reserve credit.
# A window is named by when its counter expires on Redis's clock (PTTL after TIME): the
# names of two windows of one key are at least `expiry` apart. (TIME before a write in a
# script needs Redis 5 or later, which replicates a script's effects, not the script.)
SYNC_SCRIPT = """
local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local share = tonumber(ARGV[3])
local unused = tonumber(ARGV[4])
local unused_window = tonumber(ARGV[5])
local clock = redis.call('time')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))
if current_ttl > 0 and current_ttl < expiry then
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

if unused > 0 then
    for _, key in ipairs(KEYS) do
        local ttl = tonumber(redis.call('pttl', key))
        if ttl > 0 and math.abs(now + ttl - unused_window) < expiry / 2 then
            local count = tonumber(redis.call('get', key)) or 0
            redis.call('decrby', key, math.min(unused, count))
        end
    end
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = math.max(0, tonumber(redis.call('pttl', KEYS[1])))
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
local weighted = math.floor(previous_count * previous_ttl / expiry) + current_count
if weighted + 1 > limit then
    return {0, 0, 0, 0}
end

local credit = 0
if share > 0 then
    credit = math.floor((limit - weighted - 1) / share)
end
if redis.call('exists', KEYS[2]) == 1 then
    redis.call('incrby', KEYS[2], 1 + credit)
else
    redis.call('set', KEYS[2], 1 + credit, 'PX', expiry * 2)
end
current_ttl = tonumber(redis.call('pttl', KEYS[2]))
return {1, credit, current_ttl, now + current_ttl}
"""


@dataclass(slots=True)
class Lease:
    """Hits of one counter this process may admit without asking Redis: counted there already."""

    window: int  # the window the credit is counted in (its name: SYNC_SCRIPT)
    credit: int  # hits left to admit
    lapses: float  # time.monotonic() when that window ends; the credit is not used after


def lease_share(item: RateLimitItem) -> int:
    """K for `item`: a sync reserves 1/K of what is left; 0 (exact) below one request a second."""
    return LEASE_SHARE if item.amount >= item.get_expiry() else 0


def window_keys(storage: RedisStorage, key: str) -> list[str]:
    """The previous and the current window's counters of `key`, named as `limits` names them."""
    current = storage.prefixed_key(f"{{{key}}}")
    return [f"{current}/-1", current]


class LeasedCounter:
    """One app's sliding window counters on Redis, hit through this process's leases."""

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self.script = storage.get_connection().register_script(SYNC_SCRIPT.encode())
        self.leases: dict[str, Lease] = {}
        self._lock = threading.Lock()
        self.pid = os.getpid()

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        """Count one hit against `item`; False when it is over the limit (and then not counted)."""
        key = item.key_for(*identifiers)
        now = time.monotonic()
        with self._lock:
            if self.pid != os.getpid():  # a forked worker: the leases are its parent's
                self.leases.clear()
                self.pid = os.getpid()
            lease = self.leases.get(key)
            if lease is not None and now < lease.lapses:
                lease.credit -= 1
                if lease.credit == 0:
                    del self.leases[key]
                return True
            if lease is not None:  # its window ended: what is left goes back at the sync
                del self.leases[key]
        return self.sync(item, key, lease, now)

    def sync(self, item: RateLimitItem, key: str, lapsed: Lease | None, now: float) -> bool:
        """One round trip: give back `lapsed`'s credit, count this hit, take a new lease."""
        unused = (lapsed.credit, lapsed.window) if lapsed is not None else (0, 0)
        try:
            admitted, credit, ttl, window = self.script(
                keys=window_keys(self.storage, key),
                args=[item.amount, item.get_expiry(), lease_share(item), *unused],
            )
        except self.storage.base_exceptions as error:
            raise StorageError(error) from error
        if admitted and credit > 0:
            lapses = now + ttl / 1000 - item.get_expiry()
            self.keep(key, Lease(window, credit, lapses), item.get_expiry())
        return bool(admitted)

    def keep(self, key: str, lease: Lease, expiry: int) -> None:
        """Hold `lease`, adding the credit another thread took for the same window meanwhile."""
        with self._lock:
            held = self.leases.pop(key, None)
            if held is not None and abs(held.window - lease.window) < expiry * 500:
                lease.credit += held.credit  # names of one window differ by a millisecond or so
            elif len(self.leases) >= MAX_LEASES:
                del self.leases[next(iter(self.leases))]
            self.leases[key] = lease
