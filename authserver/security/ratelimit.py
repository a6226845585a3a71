"""Rate limits on the pages people post to and on the OAuth API endpoints.

Counters live in Redis when `redis_url` is set, so the limits hold across processes and
instances, and in memory otherwise. They are the `limits` library's sliding window
counters (two counters per key); on Redis they are hit through leases (leases.py): exact
near a limit and for every limit slower than one request a second, one round trip per
many requests for a client far below a fast limit, never more admitted than the limit.
What is counted is decided here, once per request, from the registry
(core/capabilities.py): the endpoint's class (pages, API, or none with a reason) picks
the limits and the key. `check_endpoint_classes` refuses to start an app with a protocol
endpoint the registry does not list.

This module replaced Flask-Limiter, whose per-request limit resolution (decorators,
blueprint scopes, exemption callbacks) cost about 0.2 ms of CPU on every request, more
than the token endpoint's own work (bench/RESULTS.md). Each app gets its own
`RateLimiter`: one object bound to several apps (one per test, two in a multi-instance
test) would mix their counters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import time
from collections.abc import Callable
from urllib.parse import unquote

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from ..config import Config
from ..core.capabilities import (
    ENDPOINTS_BY_NAME,
    PROTOCOL_BLUEPRINTS,
    RateLimit,
)
from .errors import handle_http_exception
from .leases import LeasedCounter

log = logging.getLogger(__name__)

EXTENSION = "authserver_limiter"
KEY_PREFIX = "authserver"

# A client_id longer than this is not a client of ours: count it by IP instead.
_MAX_CLIENT_ID = 255
# Redis must answer fast, or a stalled Redis would stall every sign-in.
_REDIS_TIMEOUT_SECONDS = 0.5
# After Redis failed, count in memory (or refuse) this long before trying it again.
_STORAGE_RETRY_SECONDS = 5.0
# What a refused request is told to wait when the storage itself is down (fail closed).
_STORAGE_DOWN_RETRY_AFTER = 30

# Counts one hit of a limit for some identifiers; False when it is over (limits' `hit`).
Hit = Callable[..., bool]


def client_ip() -> str:
    """The address the request came from (ProxyFix, when configured, makes it the client's)."""
    return request.remote_addr or "unknown"


def client_key() -> str:
    """The client_id the request names (RFC 6749 section 2.3.1) from this IP, else the IP.

    Used only to pick a rate limit bucket, never to authenticate (Authlib does that), so
    the limit is checked before anyone knows the client is real. The address is part of
    the key: otherwise anyone who knows a service's client_id could spend its budget
    from elsewhere and lock it out. Hashed, so a hostile value cannot shape the key.
    """
    client_id = _basic_user() or request.form.get("client_id", "")
    if not client_id or len(client_id) > _MAX_CLIENT_ID:
        return f"ip:{client_ip()}"
    named = f"{client_id}\x00{client_ip()}".encode("utf-8", "replace")
    return "client:" + hashlib.sha256(named).hexdigest()[:32]


def _basic_user() -> str:
    """The user part of an `Authorization: Basic` header, form-decoded; "" when absent."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""
    user, separator, _ = decoded.partition(":")
    return unquote(user.replace("+", " ")) if separator else ""


class RateLimiter:
    """One app's limits, their storage, and what happens while the storage is down."""

    def __init__(self, config: Config) -> None:
        self.enabled = config.ratelimit_enabled
        self.fail_closed = config.ratelimit_fail_closed
        self.limits: dict[RateLimit, tuple[RateLimitItem, ...]] = {
            RateLimit.PAGE: tuple(parse_many(config.ratelimit_pages)),
            RateLimit.API: tuple(parse_many(config.ratelimit_api)),
        }
        self.memory = MemoryStorage()
        self.shared: RedisStorage | None = None
        self.leased: LeasedCounter | None = None
        if config.redis_url:
            shared = storage_from_string(
                config.redis_url,
                key_prefix=KEY_PREFIX,
                wrap_exceptions=True,
                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
                socket_timeout=_REDIS_TIMEOUT_SECONDS,
            )
            assert isinstance(shared, RedisStorage)  # a redis:// URL gives the synchronous one
            self.shared = shared
            self.leased = LeasedCounter(shared)
        self._shared_down_until = 0.0
        self._outage_logged = False

    def storage(self) -> Storage:
        """Where counters live now: Redis, memory, or memory while Redis is down."""
        if self.shared is None or time.monotonic() < self._shared_down_until:
            return self.memory
        return self.shared

    def breached(self, kind: RateLimit, key: str) -> RateLimitItem | None:
        """Count one request against the limits of `kind`; the first one it is over, if any.

        `key` names the bucket: the endpoint and who is calling (`check_rate_limit`).

        Every limit is counted even once one is breached, as before, so that a refused
        burst also spends the longer windows.
        """
        storage = self.storage()
        if storage is self.memory and self.shared is not None and self.fail_closed:
            raise ServiceUnavailable(retry_after=_STORAGE_DOWN_RETRY_AFTER)
        try:
            return _hit_all(self.counter(storage), self.limits[kind], kind.value, key)
        except StorageError as error:
            self._storage_failed(error)
            if self.fail_closed:
                raise ServiceUnavailable(retry_after=_STORAGE_DOWN_RETRY_AFTER) from error
            return _hit_all(self.counter(self.memory), self.limits[kind], kind.value, key)

    def counter(self, storage: Storage) -> Hit:
        """How a hit is counted in `storage`: through leases on Redis, one by one in memory."""
        if storage is self.shared and self.leased is not None:
            return self.leased.hit
        return SlidingWindowCounterRateLimiter(storage).hit

    def seconds_until_reset(self, item: RateLimitItem, kind: RateLimit, key: str) -> int:
        """Whole seconds until the breached limit admits a request again (at least 1)."""
        try:
            stats = SlidingWindowCounterRateLimiter(self.storage()).get_window_stats(
                item, kind.value, key
            )
        except StorageError:
            return 60
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _storage_failed(self, error: StorageError) -> None:
        self._shared_down_until = time.monotonic() + _STORAGE_RETRY_SECONDS
        if not self._outage_logged:
            what = "refusing limited requests" if self.fail_closed else "counting in memory"
            log.warning("rate limit storage unreachable, %s: %s", what, error)
            self._outage_logged = True


def _hit_all(
    hit: Hit, items: tuple[RateLimitItem, ...], scope: str, key: str
) -> RateLimitItem | None:
    over = None
    for item in items:
        if not hit(item, scope, key) and over is None:
            over = item
    return over


def init_app(app: Flask) -> None:
    """Give `app` its limiter and count each request before its view runs."""
    app.extensions[EXTENSION] = RateLimiter(app.config["AUTHSERVER"])
    app.before_request(check_rate_limit)


def check_rate_limit() -> Response | None:
    """before_request: 429 (with Retry-After) when this request is over its class's limit.

    Each page counts POSTs per client IP; each API endpoint counts every request per
    client and IP. Every endpoint has its own budget.
    """
    limiter = current_limiter()
    endpoint = ENDPOINTS_BY_NAME.get(request.endpoint or "")
    if not limiter.enabled or endpoint is None:
        return None
    kind = endpoint.rate_limit
    if kind is RateLimit.API:
        key = f"{endpoint.name}/{client_key()}"
    elif kind is RateLimit.PAGE and request.method == "POST":
        key = f"{endpoint.name}/{client_ip()}"
    else:
        return None
    item = limiter.breached(kind, key)
    if item is None:
        return None
    return too_many_requests(limiter.seconds_until_reset(item, kind, key), kind)


def too_many_requests(wait: int, kind: RateLimit) -> Response:
    """429 with Retry-After: the JSON error for API clients, the error page for people."""
    if kind is RateLimit.API:
        description = f"Too many requests. Retry after {wait} seconds."
    else:
        description = f"Too many attempts. Wait {_in_words(wait)} and try again."
    response = handle_http_exception(TooManyRequests(description))
    response.headers["Retry-After"] = str(wait)
    return response


def unclassified_endpoints(app: Flask) -> list[str]:
    """Endpoints of the protocol blueprints that the registry gives no rate-limit class."""
    return sorted(
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.partition(".")[0] in PROTOCOL_BLUEPRINTS
        and rule.endpoint not in ENDPOINTS_BY_NAME
    )


def check_endpoint_classes(app: Flask) -> None:
    """Fail at start-up when a protocol endpoint has no rate-limit class in the registry."""
    missing = unclassified_endpoints(app)
    if missing:
        raise RuntimeError(
            "endpoints without a rate-limit class in authserver/core/capabilities.py: "
            + ", ".join(missing)
        )


def current_limiter() -> RateLimiter:
    """The limiter bound to the current app."""
    limiter: RateLimiter = current_app.extensions[EXTENSION]
    return limiter


def storage() -> Storage:
    """Where counters live now: Redis, memory, or the memory fallback while Redis is down."""
    return current_limiter().storage()


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
