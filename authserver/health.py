"""`GET /healthz`: is this instance able to serve? Used by load balancers and Docker's HEALTHCHECK.

The database decides: without it no token can be issued, so the answer is 503
with `Retry-After`. Redis is reported but never fails the check, because rate
limiting falls back to per-process memory when Redis is down.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

RETRY_AFTER_SECONDS = 5
REDIS_TIMEOUT_SECONDS = 0.5


@bp.get("/healthz")
def healthz() -> Response:
    """200 {"status": "ok"} when the database answers, else 503 {"status": "unavailable"}."""
    body: dict[str, Any] = {"status": "ok" if _database_ok() else "unavailable"}
    redis_url = current_app.config["AUTHSERVER"].redis_url
    if redis_url:
        body["redis"] = "ok" if _redis_ok(redis_url) else "unavailable"
    response = jsonify(body)
    if body["status"] != "ok":
        response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response


def _database_ok() -> bool:
    """`SELECT 1` through the pool (pre-ping replaces a dropped connection)."""
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", type(exc).__name__)
        return False
    finally:
        with contextlib.suppress(SQLAlchemyError):
            db.session.rollback()


def _redis_ok(url: str) -> bool:
    """PING with a short timeout on a throwaway connection."""
    import redis

    try:
        client = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False
