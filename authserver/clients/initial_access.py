"""Initial access tokens (RFC 7591 section 3): what an admin hands a developer so that
one dynamic registration succeeds. Random, shown once, stored as SHA-256, used once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from ..audit import record
from ..core.once import use_once
from ..core.secrets import hash_secret, new_token
from ..extensions import db, utcnow
from .models import InitialAccessToken

logger = logging.getLogger(__name__)

INITIAL_TOKEN_TTL = 24 * 60 * 60


def issue_initial_access_token(
    note: str = "", created_by: str | None = None, ttl: int = INITIAL_TOKEN_TTL
) -> str:
    """RFC 7591 section 3: a single-use token allowing one registration; returned only once."""
    if ttl <= 0:
        raise ValueError("ttl must be greater than zero seconds")
    token = new_token()
    now = utcnow()
    row = InitialAccessToken(
        token_hash=hash_secret(token),
        note=(note or "")[:200],
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    db.session.add(row)
    # Without created_by the actor is the signed-in person, or the system (CLI).
    record(
        "client.initial_token_issued",
        actor=created_by,
        details={"note": row.note, "expires_at": row.expires_at.isoformat()},
    )
    logger.info("initial access token issued: note=%r created_by=%s", note, created_by)
    return token


def find_initial_token(token: str) -> InitialAccessToken | None:
    """The unused, unexpired initial access token with this value, if any."""
    row = db.session.scalar(
        select(InitialAccessToken).where(InitialAccessToken.token_hash == hash_secret(token))
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def consume_initial_token(row: InitialAccessToken) -> bool:
    """Mark it used in this transaction: of two concurrent registrations only one gets it."""
    return use_once(InitialAccessToken, row.id)
