"""Two-step verification: RFC 6238 time-based one-time passwords and recovery codes.

The shared secret is stored Fernet-encrypted under a key derived from
`AUTHSERVER_SECRET_KEY` (HKDF, RFC 5869, with its own `info`), so the users table
alone gives nobody a working authenticator. Recovery codes are stored only as
HMAC-SHA256 under another derived key. Accepting a code and using a recovery code
are single conditional UPDATEs, so two requests racing with the same code cannot
both win.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import logging
import secrets
import time
from datetime import timedelta

import pyotp
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import CursorResult

from ..audit import record
from ..core import uow
from ..core.secrets import same_secret
from ..extensions import db, utcnow
from .models import AuthFailure, RecoveryCode, User

log = logging.getLogger(__name__)

# Authentication Context Class References (OpenID Connect Core section 2, `acr`): a
# level of assurance, numbered like many identity providers do.
ACR_PASSWORD = "1"  # something you know: the password alone
ACR_TWO_STEP = "2"  # the password and a second factor (TOTP or a recovery code)
ACR_VALUES_SUPPORTED = (ACR_PASSWORD, ACR_TWO_STEP)

# Authentication Method References, RFC 8176 section 2.
AMR_PASSWORD: tuple[str, ...] = ("pwd",)
AMR_TOTP: tuple[str, ...] = ("pwd", "otp", "mfa")
AMR_RECOVERY_CODE: tuple[str, ...] = ("pwd", "mfa")

# RFC 6238 section 4 and the defaults every authenticator app understands.
TOTP_DIGITS = 6
TOTP_INTERVAL = 30
# Section 5.2: accept one step either side for clock drift and typing time.
TOTP_DRIFT_STEPS = 1

RECOVERY_CODE_COUNT = 10
# RFC 4648 base32, lower case: 10 characters carry 50 bits; shown as xxxx-xxxx-xx.
RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
RECOVERY_CODE_LENGTH = 10

# Wrong codes per person before every code is refused for a while, whatever the browser:
# the per-attempt counter lives in the (replayable) cookie, this one in the database.
MAX_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)
FAILURE_FACTOR = "two_step"

SECRET_INFO = b"authserver totp"
RECOVERY_INFO = b"authserver recovery codes"


class TwoStepError(ValueError):
    """A two-step verification request that cannot be carried out, with a reason to show."""


class TooManyFailures(TwoStepError):
    """Too many wrong codes lately: every code is refused for a while."""


def _derive(secret: str, info: bytes) -> bytes:
    """RFC 5869: a 256-bit key for one purpose, derived from an application secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return hkdf.derive(secret.encode("utf-8"))


def _server_secrets() -> list[str]:
    """The current secret first, then the fallbacks still accepted."""
    config = current_app.config["AUTHSERVER"]
    fallbacks = [s for s in config.secret_key_fallbacks if s and s != config.secret_key]
    return [config.secret_key, *fallbacks]


def _cipher() -> MultiFernet:
    """Encrypts with the current secret; decrypts with it or any fallback."""
    keys = [base64.urlsafe_b64encode(_derive(s, SECRET_INFO)) for s in _server_secrets()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt_secret(secret: str) -> str:
    """A TOTP secret as a Fernet token under the current server secret."""
    return _cipher().encrypt(secret.encode("ascii")).decode("ascii")


def decrypt_secret(token: str) -> str | None:
    """The TOTP secret of a stored token, or None when no configured secret opens it."""
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError):
        log.error("a TOTP secret cannot be decrypted: was AUTHSERVER_SECRET_KEY changed?")
        return None


def reencrypt_secrets() -> int:
    """Re-encrypt every stored TOTP secret under the current server secret (the CLI commits).

    Run after moving the old secret to AUTHSERVER_SECRET_KEY_FALLBACKS; afterwards
    the fallback is no longer needed for two-step verification.
    """
    cipher = _cipher()
    users = db.session.scalars(select(User).where(User.totp_secret_encrypted.is_not(None))).all()
    for user in users:
        assert user.totp_secret_encrypted is not None
        user.totp_secret_encrypted = cipher.rotate(
            user.totp_secret_encrypted.encode("ascii")
        ).decode("ascii")
    return len(users)


def is_enabled(user: User) -> bool:
    """True when the person signs in with a second step."""
    return user.totp_enabled_at is not None and user.totp_secret_encrypted is not None


def begin_enrolment(user: User) -> str:
    """Give the person a new secret (160 bits, RFC 4226 section 4), not yet in force."""
    if is_enabled(user):
        raise TwoStepError("Two-step verification is already on.")
    secret = pyotp.random_base32()
    user.totp_secret_encrypted = encrypt_secret(secret)
    user.totp_enabled_at = None
    user.totp_last_step = None
    return secret


def pending_secret(user: User) -> str | None:
    """The secret of an enrolment waiting for its first code, if any."""
    if user.totp_enabled_at is not None or not user.totp_secret_encrypted:
        return None
    return decrypt_secret(user.totp_secret_encrypted)


def cancel_enrolment(user: User) -> None:
    """Forget a secret that was never confirmed."""
    if user.totp_enabled_at is None:
        user.totp_secret_encrypted = None
        user.totp_last_step = None


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI authenticator apps scan (Key Uri Format)."""
    issuer = current_app.config["AUTHSERVER"].product_name
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The URI as a QR code in SVG: dark modules on a white ground, no inline styles."""
    import segno  # only the enrolment page draws a QR code: not loaded in every worker

    qr = segno.make(uri, error="m", micro=False)
    out = io.BytesIO()
    qr.save(
        out,
        kind="svg",
        xmldecl=False,
        scale=5,
        border=4,
        dark="#000",
        light="#fff",
        title="QR code for your authenticator app",
    )
    return out.getvalue().decode("utf-8")


def current_step(at: float | None = None) -> int:
    """RFC 6238 section 4.2: T = floor((now - T0) / X), with T0 = 0 and X = 30 s."""
    return int((time.time() if at is None else at) // TOTP_INTERVAL)


def normalize_totp(code: str) -> str | None:
    """The six digits of a typed code (spaces allowed), or None."""
    digits = "".join(code.split())
    if len(digits) != TOTP_DIGITS or not digits.isascii() or not digits.isdigit():
        return None
    return digits


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step within the drift window whose code this is, or None."""
    digits = normalize_totp(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)
    now = current_step(at)
    found = None
    for step in range(now - TOTP_DRIFT_STEPS, now + TOTP_DRIFT_STEPS + 1):
        # Compare against every step in the window, so the time taken does not tell which.
        if same_secret(totp.generate_otp(step), digits):
            found = step
    return found


def verify_totp(user: User, code: str, at: float | None = None) -> bool:
    """RFC 6238 section 5.2: accept a code once; a step at or before the last one is refused.

    One atomic UPDATE in the caller's unit of work: of two requests with the same code,
    the database lets one change the row; the other finds the step already used.
    """
    secret = decrypt_secret(user.totp_secret_encrypted or "")
    if secret is None:
        return False
    step = matching_step(secret, code, at)
    if step is None:
        return False
    result = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.totp_last_step.is_(None), User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def confirm_enrolment(user: User, code: str) -> list[str]:
    """Turn two-step verification on with a first valid code; returns new recovery codes."""
    if pending_secret(user) is None:
        raise TwoStepError("Start again: there is no set-up waiting to be confirmed.")
    if not verify_totp(user, code):
        raise TwoStepError("That code is not right. Enter the 6-digit code your app shows now.")
    user.totp_enabled_at = utcnow()
    record("two_step.enabled", subject=user.sub)
    return regenerate_recovery_codes(user)


def disable(user: User) -> None:
    """Turn two-step verification off: the secret and every recovery code go."""
    remove_factors(user)
    record("two_step.disabled", subject=user.sub)


def remove_factors(user: User) -> bool:
    """Forget the secret (enrolled or pending) and every recovery code; the caller commits.

    True when there was anything to forget.
    """
    had = user.totp_secret_encrypted is not None
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    removed = db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    return had or _rowcount(removed) > 0


def _new_recovery_code() -> str:
    """Ten random base32 characters (50 bits), grouped as xxxx-xxxx-xx."""
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalize_recovery_code(code: str) -> str | None:
    """A typed recovery code without dashes and spaces, lower case; None when malformed."""
    raw = "".join(code.replace("-", " ").split()).lower()
    if len(raw) != RECOVERY_CODE_LENGTH or any(c not in RECOVERY_ALPHABET for c in raw):
        return None
    return raw


def _recovery_hashes(raw: str) -> list[str]:
    """HMAC-SHA256 of a normalised code under the current and each fallback secret."""
    return [
        hmac.new(_derive(s, RECOVERY_INFO), raw.encode("ascii"), hashlib.sha256).hexdigest()
        for s in _server_secrets()
    ]


def regenerate_recovery_codes(user: User) -> list[str]:
    """Replace every recovery code with ten new ones; the plain codes are returned once."""
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    now = utcnow()
    for code in codes:
        digest = _recovery_hashes(normalize_recovery_code(code) or "")[0]
        db.session.add(RecoveryCode(user_id=user.id, code_hash=digest, created_at=now))
    return codes


def use_recovery_code(user: User, code: str) -> bool:
    """Spend a recovery code: true once, for an unused code of this person."""
    raw = normalize_recovery_code(code)
    if raw is None:
        return False
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash.in_(_recovery_hashes(raw)),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) >= 1


def remaining_recovery_codes(user: User) -> int:
    """How many recovery codes are still unused."""
    query = select(func.count(RecoveryCode.id)).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
    )
    return int(db.session.scalar(query) or 0)


def record_failure(user: User) -> None:
    """Remember a wrong code against the person, for the throttle.

    Kept (core.uow.keep): the request answers the wrong code with an error, and the
    count must outlive that answer or the throttle would never hold.
    """
    db.session.add(AuthFailure(user_id=user.id, factor=FAILURE_FACTOR))
    uow.keep()


def too_many_failures(user: User) -> bool:
    """True after MAX_FAILURES wrong codes within FAILURE_WINDOW."""
    query = select(func.count(AuthFailure.id)).where(
        AuthFailure.user_id == user.id,
        AuthFailure.factor == FAILURE_FACTOR,
        AuthFailure.created_at > utcnow() - FAILURE_WINDOW,
    )
    return int(db.session.scalar(query) or 0) >= MAX_FAILURES


def clear_failures(user: User) -> None:
    """A right code ends the count of wrong ones."""
    db.session.execute(
        delete(AuthFailure).where(
            AuthFailure.user_id == user.id, AuthFailure.factor == FAILURE_FACTOR
        )
    )


def check_second_factor(user: User, code: str, method: str) -> tuple[str, ...] | None:
    """Verify a TOTP ("totp") or recovery code ("recovery"); the RFC 8176 amr on success.

    Wrong codes count towards the throttle; while it holds, every code is refused
    (TooManyFailures), so guessing from many browsers at once gains nothing.
    """
    if too_many_failures(user):
        raise TooManyFailures("Too many wrong codes. Wait 15 minutes, then try again.")
    if method == "recovery":
        ok, amr = use_recovery_code(user, code), AMR_RECOVERY_CODE
    else:
        ok, amr = verify_totp(user, code), AMR_TOTP
    if not ok:
        record_failure(user)
        return None
    clear_failures(user)
    return amr


def _rowcount(result: object) -> int:
    """Rows an UPDATE changed."""
    return result.rowcount if isinstance(result, CursorResult) else 0
