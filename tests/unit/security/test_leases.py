"""Leases on Redis: exact near a limit and for slow limits, few round trips far below a fast one.

Every test counts against the real Redis (127.0.0.1:6379, db 15) under a key prefix of
its own, removed afterwards. A "process" is a LeasedCounter: its leases are its own, as
a worker's are; several of them on one key are several workers or instances.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from authserver.security.leases import LEASE_SHARE, LeasedCounter, lease_share
from tests.functional.test_rate_limits import CLOSED_PORT_URL, REDIS_URL, needs_redis

pytestmark = needs_redis

WHO = ("api", "client")  # the identifiers every hit in these tests counts under


class CountingConnection(redis.Connection):
    """A Redis connection that counts what it sends: one command, one round trip here."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        """Count, then send as usual."""
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def storage() -> Iterator[RedisStorage]:
    """Real Redis under a prefix of this test's own, emptied afterwards; round trips counted."""
    prefix = f"leases-test-{uuid.uuid4().hex}"
    shared = RedisStorage(
        REDIS_URL, key_prefix=prefix, wrap_exceptions=True, connection_class=CountingConnection
    )
    CountingConnection.sent = 0
    yield shared
    client = shared.get_connection()
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
    client.close()


def processes(storage: RedisStorage, count: int) -> list[LeasedCounter]:
    """`count` workers counting in the same Redis, each with leases of its own."""
    return [LeasedCounter(storage) for _ in range(count)]


def admitted(counter: LeasedCounter, item: RateLimitItem, hits: int) -> int:
    """How many of `hits` hits `counter` admits."""
    return sum(counter.hit(item, *WHO) for _ in range(hits))


# A fast limit (leased: over one a second) whose window outlasts any test: a window ending
# mid-test starts a new budget, which a loaded machine's slow test run would see as
# "more than the limit" (1003 of 1000 when a one-minute window rolled over).
FAST_LONG_WINDOW = "1000 per 10 minutes"


def counted(storage: RedisStorage, item: RateLimitItem) -> int:
    """What Redis holds against `item` (the library's own reading): used and reserved hits."""
    return item.amount - SlidingWindowCounterRateLimiter(storage).get_window_stats(item, *WHO)[1]


def test_limits_slower_than_one_a_second_are_counted_exactly() -> None:
    for slow in ("3/minute", "20/minute", "300/hour", "2/minute"):
        assert lease_share(parse(slow)) == 0
    assert lease_share(parse("600/minute")) == LEASE_SHARE
    assert lease_share(parse("1/second")) == LEASE_SHARE


@pytest.mark.parametrize("limit", ["3/minute", "20/minute", "300/hour"])
def test_a_small_limit_is_exact_across_two_processes(storage: RedisStorage, limit: str) -> None:
    item = parse(limit)
    first, second = processes(storage, 2)
    # As in test_instances: three hits on one instance, the rest of the budget on the other.
    assert admitted(first, item, 3) == 3
    assert admitted(second, item, item.amount - 3) == item.amount - 3
    assert not second.hit(item, *WHO)
    assert not first.hit(item, *WHO)
    assert counted(storage, item) == item.amount  # a refused hit is not counted


def test_a_fast_limit_admits_exactly_its_amount_across_two_processes(
    storage: RedisStorage,
) -> None:
    item = parse("600/minute")
    first, second = processes(storage, 2)
    answers = [(first, second)[n % 2].hit(item, *WHO) for n in range(900)]
    assert sum(answers) == item.amount
    assert answers[-20:] == [False] * 20  # near the end every hit asked Redis: none left over
    assert counted(storage, item) == item.amount


def test_a_client_far_below_its_limit_costs_few_round_trips(storage: RedisStorage) -> None:
    far_below, near = parse("100000/minute"), parse("600/minute")
    counter = LeasedCounter(storage)
    assert counter.hit(far_below, *WHO)  # connects, loads the script, takes a lease
    CountingConnection.sent = 0
    assert admitted(counter, far_below, 2999) == 2999
    assert CountingConnection.sent == 0  # all from the lease
    assert counted(storage, far_below) >= 3000  # Redis holds at least what was admitted

    CountingConnection.sent = 0
    assert admitted(counter, near, 300) == 300  # half of a 600/minute budget
    assert CountingConnection.sent <= 300 / 10
    assert counted(storage, near) >= 300


@pytest.mark.parametrize("workers", [LEASE_SHARE, 40])
def test_many_processes_never_admit_more_than_the_limit(
    storage: RedisStorage, workers: int
) -> None:
    item = parse(FAST_LONG_WINDOW)
    counters = processes(storage, workers)
    rng = random.Random(workers)  # bursts of random length on random workers
    total = 0
    while sum(len(c.leases) for c in counters) or total < item.amount:
        burst = rng.randint(1, 80)
        total += admitted(rng.choice(counters), item, burst)
        assert total <= item.amount
        if rng.random() < 0.05:  # now and then every worker sees the client
            total += sum(admitted(c, item, 1) for c in counters)
        assert total <= item.amount
    assert total == item.amount  # once every lease is spent, nothing was lost either
    assert counted(storage, item) == item.amount


def test_threads_of_one_process_share_its_leases_safely(storage: RedisStorage) -> None:
    item = parse(FAST_LONG_WINDOW)
    counter = LeasedCounter(storage)
    results: list[int] = []

    def worker() -> None:
        results.append(admitted(counter, item, 250))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(results) == item.amount  # 2000 tries: every credit used, none twice


def test_a_lease_ends_with_its_window_and_gives_back_what_it_did_not_use(
    storage: RedisStorage,
) -> None:
    item = parse("64 per 1 second")
    counter = LeasedCounter(storage)
    assert counter.hit(item, *WHO)
    (lease,) = counter.leases.values()
    assert lease.credit == (item.amount - 1) // LEASE_SHARE
    assert counted(storage, item) == 1 + lease.credit  # reserved at once

    time.sleep(max(0.0, lease.lapses - time.monotonic()) + 0.05)
    CountingConnection.sent = 0
    assert counter.hit(item, *WHO)  # a new window: not from the old lease
    assert CountingConnection.sent == 1
    previous, _, current, _ = storage.get_sliding_window(item.key_for(*WHO), item.get_expiry())
    assert previous == 1  # the old window holds only the hit it admitted
    (renewed,) = counter.leases.values()
    assert current == 1 + renewed.credit


def test_a_refused_hit_gets_a_meaningful_retry_after(storage: RedisStorage) -> None:
    item = parse("60/minute")
    counter = LeasedCounter(storage)
    assert admitted(counter, item, 61) == 60
    stats = SlidingWindowCounterRateLimiter(storage).get_window_stats(item, *WHO)
    assert stats.remaining == 0
    assert 0 < stats.reset_time - time.time() <= 60


def test_a_forked_worker_forgets_its_parents_leases(storage: RedisStorage) -> None:
    item = parse("600/minute")
    counter = LeasedCounter(storage)
    assert counter.hit(item, *WHO)
    CountingConnection.sent = 0
    counter.pid = -1  # what a child process sees: another pid than its counter was made in
    assert counter.hit(item, *WHO)
    assert CountingConnection.sent == 1  # it asked Redis instead of using the parent's credit


def test_an_unreachable_redis_is_a_storage_error() -> None:
    unreachable = RedisStorage(CLOSED_PORT_URL, wrap_exceptions=True, socket_connect_timeout=0.5)
    with pytest.raises(StorageError):
        LeasedCounter(unreachable).hit(parse("600/minute"), *WHO)
    unreachable.get_connection().close()
