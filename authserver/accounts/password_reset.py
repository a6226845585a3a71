"""Password reset: a single-use link to the account's address, then a new password.

"Forgot password" answers the same and does the same work whether or not the address
has an account (OWASP Forgot Password Cheat Sheet, "Forgot password request").
"""

from __future__ import annotations

from flask import current_app

from ..audit import Actor
from ..core.secrets import hash_secret, new_token
from ..extensions import db
from ..mail import render_mail, send_mail
from ..mail.links import absolute_url, describe_duration
from .lifecycle import set_password
from .links import RESET_PASSWORD, consume, issue, peek_token, recently_sent
from .models import User
from .passwords import hash_password
from .services import (
    check_password_policy,
    find_by_email,
    greeting_name,
    is_valid_email,
    normalize_email,
)


def request_password_reset(email: str) -> None:
    """Queue a reset link when the address has an active account; otherwise the same work.

    Either way: one user lookup, one "sent lately?" lookup, one rendered mail, one
    outbox row (suppressed when no link goes out); the request commits.
    """
    address = normalize_email(email)
    user = find_by_email(address) if is_valid_email(address) else None
    recent = recently_sent(user.id if user is not None else None, RESET_PASSWORD, address)
    token = new_token()
    ttl = current_app.config["AUTHSERVER"].password_reset_ttl
    context = {
        "name": greeting_name(user) if user is not None else "",
        "email": address,
        "link": absolute_url("accounts.reset_password", token=token),
        "valid_for": describe_duration(ttl),
    }
    if user is None or not user.is_active or recent:
        hash_secret(token)  # the work issue() would have done
        reason = "unknown_account" if user is None else "not_sent"
        account = user.sub if user is not None else None
        render_mail("reset_password", address, reason=reason, account=account, **context)
    else:
        issue(user, RESET_PASSWORD, user.email, token=token)
        send_mail("reset_password", user.email, account=user.sub, **context)


def reset_password(token: str, new_password: str) -> User | None:
    """Set a new password through a reset link (lifecycle.set_password); not committed.

    The link proves the mailbox: the address becomes verified, and an account that had
    never been verified loses its two-step factors (lifecycle.prove_address). Raises
    AccountError when the password breaks the policy (the link stays usable); None when
    the link is unknown, used or expired. The person is not signed in.
    """
    check_password_policy(new_password)
    if peek_token(token, RESET_PASSWORD) is None:
        return None
    password_hash = hash_password(new_password)  # before the row is locked
    row = consume(token, RESET_PASSWORD)
    user = db.session.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active:
        db.session.rollback()
        return None
    set_password(
        user,
        new_password,
        reason="reset",
        actor=Actor("user", user.sub),
        address_proven=row.email == user.email,
        password_hash=password_hash,
    )
    return user
