"""Brute-force protection per account: growing delays, then a short lock.

After FREE_FAILURES wrong passwords within `lockout_duration`, each next attempt must
wait 2^(n - FREE_FAILURES) seconds (at most MAX_DELAY); after `lockout_threshold` the
address is locked until the oldest failure leaves the window. An early attempt is
refused without checking the password, with the answer a wrong password gets; a
locked one is told to try later. The lock is short and a password reset ends it, so an
attacker cannot keep a person out (OWASP Authentication Cheat Sheet, "Account Lockout").

Failures are rows of `auth_failures` keyed by `account_key`, the SHA-256 of the typed
address, for addresses with and without an account alike: both insert one row, run one
count and are committed by the request (kept even though the attempt failed), so neither
the answers nor the time nor the database work tell which addresses have accounts. A
known address's rows also carry its `user_id`, and for it only failures since its
password last changed count. The same count guards the password checks of a signed-in
person (accounts/proof.py).

Each function takes the typed address and the person it names (`find_for_sign_in`, or
None): the caller looks them up once per attempt, for known and unknown addresses alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, func, or_, select

from ..audit import AuditEvent, record, record_and_commit
from ..core import uow
from ..core.secrets import hash_secret
from ..extensions import db, precise_utcnow, utcnow
from ..mail import send_mail
from ..mail.links import absolute_url
from .models import AuthFailure, User
from .services import greeting_name, normalize_email, typed_address

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


def delay_after(failures: int) -> int:
    """Seconds the next attempt must wait after `failures` recent failures."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** (failures - FREE_FAILURES), MAX_DELAY))


def account_key(email: str) -> str:
    """The key failures are counted under: SHA-256 hex of the normalized address."""
    return hash_secret(normalize_email(email or ""))


@dataclass(frozen=True)
class Standing:
    """An address before its password is checked: its recent failures, and why the attempt
    is refused ("locked": the threshold was reached within the window; "wait": too soon
    after the last failure) or None to go ahead."""

    failures: Failures
    refused: str | None


def standing(email: str, user: User | None) -> Standing:
    """Where a password attempt for `email` (naming `user`) stands: one count query.

    Both refusals cost no password hashing, for known and unknown addresses alike.
    """
    config = current_app.config["AUTHSERVER"]
    failures = _failures(email, user.password_changed_at if user is not None else None)
    if failures.count >= config.lockout_threshold:
        return Standing(failures, "locked")
    if failures.last_at is not None:
        ready_at = failures.last_at + timedelta(seconds=delay_after(failures.count))
        if precise_utcnow() < ready_at:
            return Standing(failures, "wait")
    return Standing(failures, None)


def record_failure(email: str, user: User | None) -> None:
    """Count a wrong password for `email`; start the lock when this one reaches the threshold.

    Kept (core.uow.keep): the failure is answered as one (a re-shown form, a refused
    proof), and the count must outlive that answer or the lockout would never start.
    """
    config = current_app.config["AUTHSERVER"]
    # Read before any commit expires the row (the lock's audit event commits): reading
    # after it would query again, for known addresses only.
    user_id, changed_at = (user.id, user.password_changed_at) if user is not None else (None, None)
    db.session.add(AuthFailure(account_key=account_key(email), user_id=user_id, factor=FACTOR))
    uow.keep()
    if _failures(email, changed_at).count == config.lockout_threshold:
        _lock_started(email, user)


# Built once, like the count below: a right password runs it at every sign-in. No session
# synchronization: failures are counted in SQL, never loaded as objects.
_CLEAR = (
    delete(AuthFailure)
    .where(
        AuthFailure.factor == FACTOR,
        or_(
            AuthFailure.account_key == bindparam("account_key"),
            AuthFailure.user_id == bindparam("user_id"),
        ),
    )
    .execution_options(synchronize_session=False)
)


def clear(user: User, before: Standing) -> None:
    """A right password ends the count of wrong ones, when `before` (its standing) had any.

    Failures that did not count then (outside the window, from before the password last
    changed) never count again; `authserver cleanup` purges them.
    """
    if before.failures.count:
        db.session.execute(_CLEAR, {"account_key": account_key(user.email), "user_id": user.id})


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["AUTHSERVER"].lockout_duration)


_COUNT = select(func.count(AuthFailure.id), func.max(AuthFailure.created_at)).where(
    AuthFailure.account_key == bindparam("account_key"),
    AuthFailure.factor == FACTOR,
    AuthFailure.created_at > bindparam("since"),
)


def _failures(email: str, password_changed_at: datetime | None) -> Failures:
    """Failures for the address within the window (for an account: since its password changed)."""
    since = utcnow() - _window()
    if password_changed_at is not None:
        since = max(since, password_changed_at)
    count, last_at = db.session.execute(
        _COUNT, {"account_key": account_key(email), "since": since}
    ).one()
    if isinstance(last_at, str):  # SQLite: func.max skips the column type
        last_at = datetime.fromisoformat(last_at)
    if isinstance(last_at, datetime) and last_at.tzinfo is None:
        last_at = last_at.replace(tzinfo=utcnow().tzinfo)
    return Failures(int(count or 0), last_at)


def _lock_started(email: str, user: User | None) -> None:
    """Audit the lock and, for a real account, tell its owner once; one commit for both."""
    config = current_app.config["AUTHSERVER"]
    address = typed_address(email)  # what was typed, only when it is a well-formed address
    if user is not None and user.is_active:
        send_mail(
            "account_locked",
            user.email,
            account=user.sub,
            name=greeting_name(user),
            email=user.email,
            minutes=max(1, config.lockout_duration // 60),
            link=absolute_url("accounts.forgot_password"),
        )
    record_and_commit(
        "signin.locked",
        actor=None,
        actor_type="user",
        subject=user.sub if user is not None else None,
        details={"email": address, "minutes": config.lockout_duration // 60},
    )


def record_signin_failure(email: str, user: User | None) -> AuditEvent:
    """Audit a rejected e-mail and password (`user`: the person it names), with the reason.

    Kept (core.uow.keep) and left to the request's commit: one commit per failed attempt
    with the failure's count, for known and unknown addresses alike.

    The log is for admins only, so it may name the attempted address and why the
    attempt failed, which the sign-in page itself never tells. What was typed is kept
    only when it is a well-formed address (`typed_address`): anything else could carry
    line breaks or terminal escapes into whoever reads the log.
    """
    uow.keep()
    address = typed_address(email)
    if address is None:
        return record(
            "signin.failure", actor=None, actor_type="user", details={"reason": "malformed_email"}
        )
    if user is None:
        reason = "unknown_account"
    elif not user.is_active:
        reason = "account_disabled"
    else:
        reason = "wrong_password" if user.password_hash else "no_password"
    return record(
        "signin.failure",
        actor=None,
        actor_type="user",
        subject=user.sub if user is not None else None,
        details={"reason": reason, "email": address},
    )
