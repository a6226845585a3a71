"""Fresh proof: what a signed-in person gives to change their e-mail, password or factors.

A session alone is not enough to change how an account is reached or signed in to: a
borrowed or stolen session would keep the account (OWASP Authentication Cheat Sheet,
"Require re-authentication for sensitive features"). The person proves it is them in
the same request, with the current password or, when two-step verification is on, a
code from the authenticator app or an unused recovery code (NIST SP 800-63B section
4.2.3 / 7.2: re-authentication with one of the account's authenticators).

Guessing is bounded like sign-in itself: the account lockout (accounts/lockout.py)
refuses every proof while it says "locked" or "wait", without checking anything, and a
wrong password counts as a failure there, so a session holder cannot guess faster at
/account than at /login; wrong codes count in the two-step throttle (accounts/totp.py).
The pages that ask for a proof are also limited per IP (security/ratelimit.py). Pages
that enrol a factor instead ask for a sign-in within the last minutes
(two_step_views.recent_sign_in): that re-authentication passes through /login.
"""

from __future__ import annotations

from . import lockout, totp
from .models import User
from .passwords import verify_password
from .services import MAX_PASSWORD_LENGTH, AccountError

WAIT_MESSAGE = "Too many wrong attempts. Wait a few seconds, then try again."
WRONG_PASSWORD = "That is not your current password."


class ProofError(AccountError):
    """The credential proved nothing; `reason` is "wrong", "wait", "locked" or "codes"."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_fresh_proof(user: User, credential: str) -> str:
    """How `credential` proves it is `user`: "password", "totp" or "recovery"; else ProofError.

    Accepts the current password, or with two-step verification on a TOTP code or an
    unused recovery code (which is spent). Refused without any check while the lockout
    holds; a wrong password is counted by the lockout, a wrong code by the two-step
    throttle. A right password clears the lockout count, as at sign-in.
    """
    if not credential:
        raise ProofError("wrong", "Enter your password.")
    standing = lockout.standing(user.email, user)
    if standing.refused == "locked":
        raise ProofError("locked", lockout.LOCKED_MESSAGE)
    if standing.refused == "wait":
        raise ProofError("wait", WAIT_MESSAGE)
    if (
        user.password_hash
        and len(credential) <= MAX_PASSWORD_LENGTH
        and verify_password(user.password_hash, credential)
    ):
        lockout.clear(user, standing)
        return "password"
    method = _code_method(user, credential)
    if method is None:
        lockout.record_failure(user.email, user)
        raise ProofError("wrong", WRONG_PASSWORD)
    try:
        proven = totp.check_second_factor(user, credential, method) is not None
    except totp.TooManyFailures as error:
        raise ProofError("codes", str(error)) from None
    if not proven:
        raise ProofError("wrong", "That code is not right.")
    return method


def _code_method(user: User, credential: str) -> str | None:
    """ "totp" or "recovery" when two-step verification is on and the credential looks like one."""
    if not totp.is_enabled(user):
        return None
    if totp.normalize_totp(credential) is not None:
        return "totp"
    if totp.normalize_recovery_code(credential) is not None:
        return "recovery"
    return None
