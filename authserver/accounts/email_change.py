"""E-mail verification and change: an address counts only once a link sent to it is opened.

Mails to an address not yet proven to be the person's carry no text the requester
chose (no display name): see `services.greeting_name`.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..extensions import db
from ..mail import send_mail
from ..mail.links import absolute_url, describe_duration
from .links import VERIFY_EMAIL, consume, issue, recently_sent, void_tokens
from .models import User
from .services import AccountError, find_by_email, greeting_name, is_valid_email, normalize_email


def send_verification_email(user: User, email: str | None = None) -> None:
    """Queue a verification link for `email` (a new address) or the current one."""
    address = normalize_email(email) if email else user.email
    if recently_sent(user.id, VERIFY_EMAIL, address):
        return
    queue_verification(user, address)


def queue_verification(user: User, address: str) -> None:
    """Issue a verification token for `address` and queue its mail (not committed)."""
    token = issue(user, VERIFY_EMAIL, address)
    template = "verify_email" if address == user.email else "verify_new_email"
    send_mail(template, address, account=user.sub, **_verification_context(address, token))


def _verification_context(address: str, token: str) -> dict[str, Any]:
    """What the verification mail says: which address, the link and its lifetime (no name)."""
    ttl = current_app.config["AUTHSERVER"].email_verification_ttl
    return {
        "email": address,
        "link": absolute_url("accounts.verify_email", token=token),
        "valid_for": describe_duration(ttl),
    }


def request_email_change(user: User, new_email: str) -> None:
    """Queue a verification link to `new_email`; the address changes only when it is opened.

    The old address is told about the request. When the new address belongs to
    another account, its owner gets a notice instead of a link and the link is never
    sent, so the account page shows the same thing either way. The caller has
    checked a fresh proof (accounts.proof).
    """
    address = normalize_email(new_email)
    if not is_valid_email(address):
        raise AccountError("Enter a valid e-mail address.")
    if address == user.email:
        raise AccountError("This is already your e-mail address.")
    if recently_sent(user.id, VERIFY_EMAIL, address):
        return
    token = issue(user, VERIFY_EMAIL, address)
    if find_by_email(address) is None:
        send_mail(
            "verify_new_email", address, account=user.sub, **_verification_context(address, token)
        )
    else:
        send_mail(
            "email_in_use",
            address,
            account=user.sub,
            email=address,
            link=absolute_url("accounts.login"),
        )
    send_mail(
        "email_change_requested",
        user.email,
        account=user.sub,
        name=greeting_name(user),
        email=user.email,
        new_email=address,
        link=absolute_url("accounts.forgot_password"),
    )


def verify_email_token(token: str) -> User | None:
    """Consume a verification link: mark the address verified, or switch to the new one.

    None when the link is unknown, used, expired, its account is disabled, or the
    new address has been taken by another account meanwhile.
    """
    row = consume(token, VERIFY_EMAIL)
    if row is None:
        return None
    user = db.session.get(User, row.user_id)
    address = row.email or ""
    if user is None or not user.is_active or not address:
        db.session.rollback()
        return None
    if address != user.email and find_by_email(address) is not None:
        db.session.rollback()
        return None
    _mark_verified(user, address)
    record("email.verified", actor=user.sub, subject=user.sub, details={"email": address})
    try:
        db.session.flush()  # the unique address is checked here; the request commits
    except IntegrityError:  # another account took the address at the same moment
        db.session.rollback()
        return None
    return user


def _mark_verified(user: User, address: str) -> None:
    """`address` is proven: make it the person's verified address; void older links."""
    if address != user.email:
        user.email = address
        # Links for the previous address and for other changes are void now.
        void_tokens(user, VERIFY_EMAIL)
    else:
        void_tokens(user, VERIFY_EMAIL, email=address)
    user.email_verified = True
