"""Rate limits (Flask-Limiter) on the pages people post to and on the OAuth API endpoints.

Counters live in Redis when `redis_url` is set, so the limits hold across processes and
instances, and in memory otherwise. Each app gets its own `Limiter`: Flask-Limiter keeps
its storage and its "Redis is down" state on the extension object, so one object bound
to several apps (one per test, two in a multi-instance test) would mix their counters.

Each endpoint's limit class (pages, API, or none with a reason) is read from the
registry, core/capabilities.py, rather than set by decorators; `check_endpoint_classes`
refuses to start an app with a protocol endpoint the registry does not list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import time
from typing import Any
from urllib.parse import unquote

from flask import Flask, Response, current_app, request
from flask_limiter import Limit, Limiter, RequestLimit
from flask_limiter.errors import RateLimitExceeded
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from ..core.capabilities import (
    API_ENDPOINTS,
    ENDPOINTS_BY_NAME,
    PAGE_ENDPOINTS,
    PROTOCOL_BLUEPRINTS,
)
from .errors import handle_http_exception

log = logging.getLogger(__name__)

EXTENSION = "authserver_limiter"
KEY_PREFIX = "authserver"

# A client_id longer than this is not a client of ours: count it by IP instead.
_MAX_CLIENT_ID = 255
# Redis must answer fast, or a stalled Redis would stall every sign-in.
_REDIS_TIMEOUT_SECONDS = 0.5
# What a refused request is told to wait when the storage itself is down (fail closed).
_STORAGE_DOWN_RETRY_AFTER = 30


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


def _is_page_request() -> bool:
    return request.endpoint in PAGE_ENDPOINTS


def _is_api_request() -> bool:
    return request.endpoint in API_ENDPOINTS


class AuthserverLimiter(Limiter):
    """Flask-Limiter that answers 503 instead of 500 when failing closed on a storage outage."""

    fail_closed = False
    _outage_logged = False

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        try:
            super()._check_request_limit(callable_name, in_middleware)
        except StorageError as error:
            if not self.fail_closed:
                raise
            if not self._outage_logged:
                log.warning("rate limit storage unreachable, refusing limited requests: %s", error)
                self._outage_logged = True
            unavailable = ServiceUnavailable(retry_after=_STORAGE_DOWN_RETRY_AFTER)
            raise unavailable from error
        self._outage_logged = False


def init_app(app: Flask) -> None:
    """Bind a new limiter to `app` with the configured limits and storage."""
    config = app.config["AUTHSERVER"]
    if config.redis_url:
        storage_uri = config.redis_url
        options: dict[str, Any] = {
            "key_prefix": KEY_PREFIX,
            "socket_connect_timeout": _REDIS_TIMEOUT_SECONDS,
            "socket_timeout": _REDIS_TIMEOUT_SECONDS,
        }
    else:
        storage_uri, options = "memory://", {}
    options["wrap_exceptions"] = True
    # Flask-Limiter reads a few settings only from app.config.
    app.config.setdefault("RATELIMIT_ENABLED", config.ratelimit_enabled)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", False)
    limiter = AuthserverLimiter(
        key_func=client_ip,
        default_limits=[
            Limit(
                config.ratelimit_pages,
                key_function=client_ip,
                methods=["POST"],
                scope="pages",
                exempt_when=lambda: not _is_page_request(),
            ),
            Limit(
                config.ratelimit_api,
                key_function=client_key,
                scope="api",
                exempt_when=lambda: not _is_api_request(),
            ),
        ],
        storage_uri=storage_uri,
        storage_options=options,
        strategy="moving-window",
        in_memory_fallback_enabled=not config.ratelimit_fail_closed,
        swallow_errors=False,
        enabled=config.ratelimit_enabled,
    )
    limiter.fail_closed = config.ratelimit_fail_closed
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    app.register_error_handler(RateLimitExceeded, handle_rate_limit_exceeded)


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


def current_limiter() -> AuthserverLimiter:
    """The limiter bound to the current app."""
    limiter: AuthserverLimiter = current_app.extensions[EXTENSION]
    return limiter


def storage() -> Storage:
    """Where counters live now: Redis, memory, or the memory fallback while Redis is down."""
    limiter = current_limiter()
    if not limiter.initialized:
        fallback: Storage = current_app.extensions.setdefault(
            f"{EXTENSION}_memory", MemoryStorage()
        )
        return fallback
    return limiter.limiter.storage


def handle_rate_limit_exceeded(error: RateLimitExceeded) -> Response:
    """429 with Retry-After: the JSON error for API clients, the error page for people."""
    limit = current_limiter().current_limit
    wait = _seconds_until_reset(limit)
    if request.endpoint in API_ENDPOINTS or request.path.startswith("/oauth2/"):
        description = f"Too many requests. Retry after {wait} seconds."
    else:
        description = f"Too many attempts. Wait {_in_words(wait)} and try again."
    response = handle_http_exception(TooManyRequests(description))
    response.headers["Retry-After"] = str(wait)
    return response


def _seconds_until_reset(limit: RequestLimit | None) -> int:
    """Whole seconds until the breached limit admits a request again (at least 1)."""
    if limit is None:
        return 60
    try:
        return max(1, math.ceil(limit.window[0] - time.time()))
    except StorageError:
        return 60


def _in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
