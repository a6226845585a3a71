"""Brute-force protection per account: growing delays, then a short lock.

After FREE_FAILURES wrong passwords within `lockout_duration`, each next attempt must
wait 2^(n - FREE_FAILURES) seconds (at most MAX_DELAY); after `lockout_threshold` the
address is locked until the oldest failure leaves the window. An early attempt is
refused without checking the password, with the answer a wrong password gets; a
locked one is told to try later. Unknown addresses are counted the same way (in the
rate limit storage, by a hash of the address), so neither the delays nor the lock
tell which addresses have accounts (OWASP Authentication Cheat Sheet, "Account
Lockout"). The lock is short and a password reset ends it, so an attacker cannot
keep a person out.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import delete, func, select

from ..audit import record_and_commit
from ..extensions import db, precise_utcnow, utcnow
from ..mail import send_mail
from ..security import ratelimit
from .models import AuthFailure, User
from .registration import absolute_url
from .services import normalize_email

log = logging.getLogger(__name__)

FACTOR = "password"
# Failures allowed at full speed before the delays start.
FREE_FAILURES = 3
MAX_DELAY = 60
LOCKED_MESSAGE = "Too many failed attempts. Try again later, or reset your password."


@dataclass(frozen=True)
class Failures:
    """Recent wrong passwords for one address: how many, and when the last was."""

    count: int
    last_at: datetime | None
    held: bool = False  # unknown addresses: the delay since the last failure still runs


def delay_after(failures: int) -> int:
    """Seconds the next attempt must wait after `failures` recent failures."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** (failures - FREE_FAILURES), MAX_DELAY))


def refusal(email: str) -> str | None:
    """Why a password attempt for `email` is refused before it is checked, or None.

    "locked": the threshold was reached within the window; "wait": too soon after the
    last failure. Both cost no password hashing, for known and unknown addresses alike.
    """
    config = current_app.config["AUTHSERVER"]
    user = _find(email)
    failures = _failures_of(user) if user is not None else _unknown_failures(email)
    if failures.count >= config.lockout_threshold:
        return "locked"
    if failures.held:
        return "wait"
    if failures.last_at is not None:
        ready_at = failures.last_at + timedelta(seconds=delay_after(failures.count))
        if precise_utcnow() < ready_at:
            return "wait"
    return None


def record_failure(email: str) -> None:
    """Count a wrong password for `email`; start the lock when this one reaches the threshold."""
    config = current_app.config["AUTHSERVER"]
    user = _find(email)
    if user is not None:
        db.session.add(AuthFailure(user_id=user.id, factor=FACTOR))
        db.session.commit()
        count = _failures_of(user).count
    else:
        count = _record_unknown(email)
    if count == config.lockout_threshold:
        _lock_started(email, user)


def clear(user: User) -> None:
    """A right password ends the count of wrong ones."""
    db.session.execute(
        delete(AuthFailure).where(AuthFailure.user_id == user.id, AuthFailure.factor == FACTOR)
    )
    db.session.commit()


def _find(email: str) -> User | None:
    address = normalize_email(email or "")
    if not address or "\x00" in address or len(address) > 320:
        return None  # no account has such an address (and PostgreSQL refuses NUL)
    return db.session.scalar(select(User).where(User.email == address))


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["AUTHSERVER"].lockout_duration)


def _failures_of(user: User) -> Failures:
    """Failures within the window, and only those since the password last changed."""
    since = utcnow() - _window()
    if user.password_changed_at is not None:
        since = max(since, user.password_changed_at)
    count, last_at = db.session.execute(
        select(func.count(AuthFailure.id), func.max(AuthFailure.created_at)).where(
            AuthFailure.user_id == user.id,
            AuthFailure.factor == FACTOR,
            AuthFailure.created_at > since,
        )
    ).one()
    if isinstance(last_at, datetime) and last_at.tzinfo is None:
        last_at = last_at.replace(tzinfo=utcnow().tzinfo)  # func.max skips the column type
    return Failures(int(count or 0), last_at)


# Unknown addresses: a moving window of failures and a "hold" for the current delay,
# both in the rate limit storage (Redis when configured, so all instances agree).


def _key(email: str) -> str:
    return hashlib.sha256(normalize_email(email or "").encode()).hexdigest()[:32]


def _window_item() -> RateLimitItemPerSecond:
    config = current_app.config["AUTHSERVER"]
    return RateLimitItemPerSecond(config.lockout_threshold, config.lockout_duration)


def _hold_item(failures: int) -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(1, max(delay_after(failures), 1))


def _unknown_failures(email: str) -> Failures:
    try:
        strategy = MovingWindowRateLimiter(ratelimit.storage())
        stats = strategy.get_window_stats(_window_item(), "lockout", _key(email))
        count = _window_item().amount - stats.remaining
        held = count >= FREE_FAILURES and not strategy.test(
            _hold_item(count), "lockout-hold", _key(email), str(count)
        )
    except StorageError:
        log.warning("rate limit storage unreachable; unknown addresses are not counted")
        return Failures(0, None)
    return Failures(count, None, held)


def _record_unknown(email: str) -> int:
    try:
        strategy = MovingWindowRateLimiter(ratelimit.storage())
        strategy.hit(_window_item(), "lockout", _key(email))
        stats = strategy.get_window_stats(_window_item(), "lockout", _key(email))
        count = _window_item().amount - stats.remaining
        if count >= FREE_FAILURES:
            strategy.hit(_hold_item(count), "lockout-hold", _key(email), str(count))
    except StorageError:
        log.warning("rate limit storage unreachable; unknown addresses are not counted")
        return 0
    return count


def _lock_started(email: str, user: User | None) -> None:
    """Audit the lock and, for a real account, tell its owner once."""
    config = current_app.config["AUTHSERVER"]
    address = normalize_email(email or "")[:254]
    record_and_commit(
        "signin.locked",
        actor=None,
        actor_type="user",
        subject=user.sub if user is not None else None,
        details={"email": address, "minutes": config.lockout_duration // 60},
    )
    if user is None or not user.is_active:
        return
    send_mail(
        "account_locked",
        user.email,
        name=user.name,
        email=user.email,
        minutes=max(1, config.lockout_duration // 60),
        link=absolute_url("accounts.forgot_password"),
    )
