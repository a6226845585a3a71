"""The web origins registered on active clients, for CORS (security/cors.py asks here).

`create_app` hands `is_registered_origin` to the security layer's CORS hook, which
may not read clients itself (layer 1 below layer 2). The set is cached per process:
a hit for `cache_ttl`, and an unknown origin reloads it at most every
MISS_RELOAD_INTERVAL seconds, so a client registered on another instance is seen
within seconds and a stream of unknown origins cannot turn into a stream of queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from .models import Client

CACHE_KEY = "authserver.cors"
MISS_RELOAD_INTERVAL = 2.0


@dataclass(frozen=True)
class _Origins:
    """The registered web origins as read from the database at `loaded_at` (monotonic)."""

    origins: frozenset[str]
    loaded_at: float


def registered_origins() -> frozenset[str]:
    """Every web origin registered on an active client, read from the database."""
    rows = db.session.scalars(select(Client.web_origins).where(Client.is_active.is_(True)))
    return frozenset(origin for origins in rows for origin in origins or ())


def is_registered_origin(origin: str) -> bool:
    """Whether some active client registered this origin; cached per process for cache_ttl."""
    now = time.monotonic()
    cached: _Origins | None = current_app.extensions.get(CACHE_KEY)
    ttl = current_app.config["AUTHSERVER"].cache_ttl
    if cached is not None:
        if origin in cached.origins and now - cached.loaded_at < ttl:
            return True
        if origin not in cached.origins and now - cached.loaded_at < min(ttl, MISS_RELOAD_INTERVAL):
            return False
    fresh = _Origins(registered_origins(), now)
    current_app.extensions[CACHE_KEY] = fresh
    return origin in fresh.origins


def invalidate_origin_cache() -> None:
    """Forget the cached origins in this process (after a client changed)."""
    current_app.extensions.pop(CACHE_KEY, None)
