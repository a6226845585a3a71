"""Purge rows past their time so tables do not grow without bound (`authserver cleanup`).

Every purge is a plain `DELETE ... WHERE <past its time>` in batches of ids, each
batch its own short transaction followed by a pause: no long locks, no read-then-write,
no core taken from live traffic for long, and running it from cron on several instances
at once is safe (on PostgreSQL a batch skips rows another instance is deleting; a row
already gone is simply not counted again).

Codes, tokens and sessions are kept for a grace period after they expire or are
revoked, so that presenting one again is still recognised (a replayed
authorization code revokes its grant, RFC 6749 section 4.1.2) and answered with
"expired" rather than "unknown" meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic, sleep
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select

from .accounts.models import AccountToken, AuthFailure
from .audit.models import AuditEvent
from .extensions import db, utcnow
from .mail.models import FAILED, SENT, SUPPRESSED, MailMessage
from .oauth.models import AuthorizationCode, DeviceCode, Grant, RefreshToken, RevokedAccessToken
from .oidc.models import FAILED as LOGOUT_FAILED
from .oidc.models import SENT as LOGOUT_SENT
from .oidc.models import BackchannelLogout
from .sessions.models import LoginSession

DEFAULT_GRACE = timedelta(days=1)
# Small batches, each followed by a rest twice as long as the batch took, so that a purge
# keeps one database backend busy a third of the time at most. Measured beside token
# traffic on a loaded 2-core server (bench/README.md, "Cleanup under load"): 5,000 rows
# back to back took 0.37 of a core and left 0.63 of the throughput (p99 1.5-1.9x);
# 1,000 with a rest twice as long left 0.88 of it (p99 1.04-1.12x).
DEFAULT_BATCH_SIZE = 1000
DEFAULT_PAUSE = 2.0


@dataclass(frozen=True)
class Purge:
    """One table and the condition, given the cut-off times, under which its rows go."""

    table: str
    model: Any
    condition: Callable[[Cutoffs], ColumnElement[bool]]


@dataclass(frozen=True)
class Cutoffs:
    """The times before which rows are purged."""

    expired: datetime  # now minus the grace period
    auth_failures: datetime  # now minus lockout_duration
    audit_events: datetime  # now minus audit_retention_days
    mail_outbox: datetime  # now minus mail_retention_days


# Grants first: deleting one deletes its refresh tokens with it (ON DELETE CASCADE).
# A grant's expires_at is the latest expiry of any token issued under it.
PURGES = (
    Purge("grants", Grant, lambda c: Grant.expires_at < c.expired),
    Purge(
        "refresh_tokens",
        RefreshToken,
        lambda c: or_(RefreshToken.expires_at < c.expired, RefreshToken.revoked_at < c.expired),
    ),
    Purge(
        "authorization_codes",
        AuthorizationCode,
        lambda c: AuthorizationCode.expires_at < c.expired,
    ),
    Purge("device_codes", DeviceCode, lambda c: DeviceCode.expires_at < c.expired),
    Purge(
        "revoked_access_tokens",
        RevokedAccessToken,
        lambda c: RevokedAccessToken.expires_at < c.expired,
    ),
    Purge("account_tokens", AccountToken, lambda c: AccountToken.expires_at < c.expired),
    Purge(
        "login_sessions",
        LoginSession,
        lambda c: or_(LoginSession.expires_at < c.expired, LoginSession.revoked_at < c.expired),
    ),
    Purge("auth_failures", AuthFailure, lambda c: AuthFailure.created_at < c.auth_failures),
    Purge("audit_events", AuditEvent, lambda c: AuditEvent.created_at < c.audit_events),
    # Logout tokens delivered or given up on; pending ones wait for the sender.
    Purge(
        "backchannel_logouts",
        BackchannelLogout,
        lambda c: and_(
            BackchannelLogout.status.in_((LOGOUT_SENT, LOGOUT_FAILED)),
            BackchannelLogout.created_at < c.expired,
        ),
    ),
    # Only messages that are done: pending ones wait for the sender, however old.
    Purge(
        "mail_outbox",
        MailMessage,
        lambda c: and_(
            MailMessage.status.in_((SENT, FAILED, SUPPRESSED)),
            MailMessage.created_at < c.mail_outbox,
        ),
    ),
)


def cutoffs(
    config: Any, *, grace: timedelta = DEFAULT_GRACE, now: datetime | None = None
) -> Cutoffs:
    """The cut-off times from the configuration (lockout, audit and mail retention)."""
    now = now or utcnow()
    return Cutoffs(
        expired=now - grace,
        auth_failures=now - timedelta(seconds=config.lockout_duration),
        audit_events=now - timedelta(days=config.audit_retention_days),
        mail_outbox=now - timedelta(days=config.mail_retention_days),
    )


def cleanup(
    limits: Cutoffs, *, batch_size: int = DEFAULT_BATCH_SIZE, pause: float = DEFAULT_PAUSE
) -> dict[str, int]:
    """Delete every row past its time; the number deleted per table, in PURGES order."""
    return {
        purge.table: purge_table(purge.model, purge.condition(limits), batch_size, pause)
        for purge in PURGES
    }


def purge_table(
    model: Any, condition: ColumnElement[bool], batch_size: int, pause: float = 0.0
) -> int:
    """Delete the rows matching `condition`, `batch_size` at a time, committing each batch.

    After a full batch, sleep `pause` times as long as that batch took.
    """
    (key,) = model.__table__.primary_key.columns
    total = 0
    while True:
        started = monotonic()
        # SKIP LOCKED (PostgreSQL; ignored by SQLite): rows another instance is
        # deleting right now are left to it instead of waited for.
        batch = select(key).where(condition).limit(batch_size).with_for_update(skip_locked=True)
        result = db.session.execute(delete(model).where(key.in_(batch.scalar_subquery())))
        db.session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < batch_size:
            return total
        sleep((monotonic() - started) * pause)
