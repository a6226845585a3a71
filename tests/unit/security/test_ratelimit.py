"""The limiter on Redis: API limits counted through leases, page limits exactly, Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from authserver.config import Config
from authserver.core.capabilities import RateLimit
from authserver.security.ratelimit import KEY_PREFIX, RateLimiter
from tests.functional.test_rate_limits import REDIS_URL, needs_redis

pytestmark = needs_redis


@pytest.fixture
def who() -> Iterator[str]:
    """A bucket no other test or run uses; its counters are removed afterwards."""
    name = f"token/test-{uuid.uuid4().hex}"
    yield name
    limiter = RateLimiter(Config(redis_url=REDIS_URL))
    assert limiter.shared is not None
    client = limiter.shared.get_connection()
    for key in client.scan_iter(match=f"{KEY_PREFIX}:*{name}*"):
        client.delete(key)
    client.close()


def test_an_api_limit_on_redis_admits_its_amount_then_says_when_to_retry(who: str) -> None:
    limiter = RateLimiter(Config(redis_url=REDIS_URL, ratelimit_api="60/minute"))
    assert limiter.leased is not None
    assert [limiter.breached(RateLimit.API, who) for _ in range(60)] == [None] * 60
    assert limiter.leased.leases == {}  # the last hits asked Redis one by one: none left
    item = limiter.breached(RateLimit.API, who)
    assert item is not None
    assert 1 <= limiter.seconds_until_reset(item, RateLimit.API, who) <= 60


def test_two_limiters_on_redis_share_a_page_budget_exactly(who: str) -> None:
    first, second = (RateLimiter(Config(redis_url=REDIS_URL)) for _ in range(2))
    assert [first.breached(RateLimit.PAGE, who) for _ in range(10)] == [None] * 10
    assert [second.breached(RateLimit.PAGE, who) for _ in range(10)] == [None] * 10
    assert second.breached(RateLimit.PAGE, who) is not None  # 20/minute, the default
    assert first.breached(RateLimit.PAGE, who) is not None
