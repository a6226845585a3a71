"""Self-service accounts: sign-up, e-mail verification and change, password reset.

Every e-mailed link carries `secrets.token_urlsafe(32)`; the database keeps only its
SHA-256 (an `AccountToken`), each link works once (an atomic UPDATE ... WHERE
used_at IS NULL) and expires. Nothing here tells a visitor whether an address has
an account: sign-up and "forgot password" answer the same and do comparable work
either way (OWASP Authentication Cheat Sheet, "Authentication and error messages").
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..extensions import db, utcnow
from ..mail import render_mail, send_mail
from ..oauth.models import Grant
from ..oauth.services import revoke_grant
from ..sessions.models import LoginSession
from .models import AccountToken, User
from .passwords import hash_password
from .services import (
    AccountError,
    check_password_policy,
    create_user,
    is_valid_email,
    normalize_email,
)

log = logging.getLogger(__name__)

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
# A new link for the same person, purpose and address goes out at most this often,
# so a form cannot be used to flood someone's mailbox.
RESEND_INTERVAL = timedelta(seconds=60)
MAX_NAME_LENGTH = 200
# token_urlsafe(32) is 43 characters; anything much longer is not ours.
_MAX_TOKEN_LENGTH = 128


def hash_token(token: str) -> str:
    """The stored form of an e-mailed token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


# Sign-up


def register(email: str, password: str, name: str) -> User | None:
    """Create an unverified account and e-mail its verification link.

    When the address already has an account, nothing is created: the owner is told
    by e-mail instead, after the same password-hashing work, and None is returned.
    Raises AccountError for an invalid address, name or password.
    """
    address = normalize_email(email)
    if not is_valid_email(address):
        raise AccountError("Enter a valid e-mail address.")
    check_password_policy(password)
    cleaned_name = " ".join(name.split())
    if len(cleaned_name) > MAX_NAME_LENGTH:
        raise AccountError(f"The name can have at most {MAX_NAME_LENGTH} characters.")
    owner = _find_by_email(address)
    if owner is None:
        try:
            user = create_user(address, password=password, name=cleaned_name)
        except AccountError:
            owner = _find_by_email(address)  # lost a race with a sign-up for the same address
            if owner is None:
                raise
        else:
            send_verification_email(user)
            return user
    hash_password(password)  # the work create_user would have done
    _tell_owner_about_signup(owner)
    return None


def _tell_owner_about_signup(owner: User) -> None:
    """E-mail the owner of an address that someone tried to sign up with."""
    context = {
        "name": owner.name,
        "email": owner.email,
        "link": absolute_url("accounts.login", login_hint=owner.email),
        "reset_link": absolute_url("accounts.forgot_password"),
    }
    if owner.is_active:
        send_mail("signup_existing", owner.email, **context)
    else:
        render_mail("signup_existing", owner.email, **context)


# E-mail verification and change


def send_verification_email(user: User, email: str | None = None) -> None:
    """E-mail a verification link for `email` (a new address) or the current one; commits."""
    address = normalize_email(email) if email else user.email
    if _recently_sent(user, VERIFY_EMAIL, address):
        return
    token = _issue(user, VERIFY_EMAIL, address)
    db.session.commit()
    template = "verify_email" if address == user.email else "verify_new_email"
    send_mail(template, address, **_verification_context(user, address, token))


def _verification_context(user: User, address: str, token: str) -> dict[str, Any]:
    """What the verification mail says: who, which address, the link and its lifetime."""
    ttl = current_app.config["AUTHSERVER"].email_verification_ttl
    return {
        "name": user.name,
        "email": address,
        "link": absolute_url("accounts.verify_email", token=token),
        "valid_for": describe_duration(ttl),
    }


def request_email_change(user: User, new_email: str) -> None:
    """Send a verification link to `new_email`; the address changes only when it is opened.

    The old address is told about the request. When the new address belongs to
    another account, its owner gets a notice instead of a link and the link is never
    sent, so the account page shows the same thing either way.
    """
    address = normalize_email(new_email)
    if not is_valid_email(address):
        raise AccountError("Enter a valid e-mail address.")
    if address == user.email:
        raise AccountError("This is already your e-mail address.")
    if _recently_sent(user, VERIFY_EMAIL, address):
        return
    token = _issue(user, VERIFY_EMAIL, address)
    db.session.commit()
    if _find_by_email(address) is None:
        send_mail("verify_new_email", address, **_verification_context(user, address, token))
    else:
        send_mail("email_in_use", address, email=address, link=absolute_url("accounts.login"))
    send_mail(
        "email_change_requested",
        user.email,
        name=user.name,
        email=user.email,
        new_email=address,
        link=absolute_url("accounts.forgot_password"),
    )


def verify_email_token(token: str) -> User | None:
    """Consume a verification link: mark the address verified, or switch to the new one.

    None when the link is unknown, used, expired, its account is disabled, or the
    new address has been taken by another account meanwhile.
    """
    row = _consume(token, VERIFY_EMAIL)
    if row is None:
        return None
    user = db.session.get(User, row.user_id)
    address = row.email or ""
    if user is None or not user.is_active or not address:
        db.session.rollback()
        return None
    if address != user.email and _find_by_email(address) is not None:
        db.session.rollback()
        return None
    try:
        _mark_verified(user, address)
        record("email.verified", actor=user.sub, subject=user.sub, details={"email": address})
        db.session.commit()
    except IntegrityError:  # another account took the address at the same moment
        db.session.rollback()
        return None
    return user


def _mark_verified(user: User, address: str) -> None:
    """`address` is proven: make it the person's verified address; void older links."""
    if address != user.email:
        user.email = address
        # Links for the previous address and for other changes are void now.
        _void_tokens(user, VERIFY_EMAIL)
    else:
        _void_tokens(user, VERIFY_EMAIL, email=address)
    user.email_verified = True


# Password reset


def request_password_reset(email: str) -> None:
    """E-mail a reset link when the address has an active account; otherwise do the same work."""
    address = normalize_email(email)
    user = _find_by_email(address) if is_valid_email(address) else None
    token = secrets.token_urlsafe(32)
    ttl = current_app.config["AUTHSERVER"].password_reset_ttl
    context = {
        "name": user.name if user is not None else "",
        "email": address,
        "link": absolute_url("accounts.reset_password", token=token),
        "valid_for": describe_duration(ttl),
    }
    if user is None or not user.is_active or _recently_sent(user, RESET_PASSWORD, user.email):
        hash_token(token)
        render_mail("reset_password", address, **context)
        return
    _issue(user, RESET_PASSWORD, user.email, token=token)
    db.session.commit()
    send_mail("reset_password", user.email, **context)


def reset_password(token: str, new_password: str) -> User | None:
    """Set a new password through a reset link; every session and token of the person ends.

    Raises AccountError when the password breaks the policy (the link stays usable);
    None when the link is unknown, used or expired. The person is not signed in.
    """
    check_password_policy(new_password)
    if peek_token(token, RESET_PASSWORD) is None:
        return None
    password_hash = hash_password(new_password)  # before the row is locked
    row = _consume(token, RESET_PASSWORD)
    user = db.session.get(User, row.user_id) if row is not None else None
    if row is None or user is None or not user.is_active:
        db.session.rollback()
        return None
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    if row.email == user.email:
        user.email_verified = True  # the link reached this mailbox
    end_all_sessions_and_tokens(user)
    _void_tokens(user, RESET_PASSWORD)
    record("password.reset", actor=user.sub, actor_type="user", subject=user.sub)
    db.session.commit()
    log.info("user %s reset their password; all sessions and grants revoked", user.id)
    send_mail(
        "password_changed",
        user.email,
        name=user.name,
        email=user.email,
        link=absolute_url("accounts.forgot_password"),
    )
    return user


def end_all_sessions_and_tokens(user: User, keep_session_id: str | None = None) -> None:
    """Sign out every session of `user` (but `keep_session_id`) and revoke every grant.

    Revoking a grant revokes its refresh tokens and access tokens. The caller commits.
    """
    now = utcnow()
    sessions = update(LoginSession).where(
        LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        sessions = sessions.where(LoginSession.id != keep_session_id)
    db.session.execute(sessions.values(revoked_at=now))
    grant_ids = db.session.scalars(
        select(Grant.id).where(Grant.user_id == user.id, Grant.revoked_at.is_(None))
    ).all()
    for grant_id in grant_ids:
        revoke_grant(grant_id)


# Tokens


def peek_token(token: str, purpose: str) -> AccountToken | None:
    """The live (unused, unexpired) token for this link, without using it."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    row = db.session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == hash_token(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def _consume(token: str, purpose: str) -> AccountToken | None:
    """Mark a live token used, atomically: of two concurrent requests only one gets it."""
    row = peek_token(token, purpose)
    if row is None:
        return None
    now = utcnow()
    result = db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.id == row.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        return None
    return row


def _issue(user: User, purpose: str, email: str, token: str | None = None) -> str:
    """Add a token for `user` (not committed) and return its secret value."""
    secret = token or secrets.token_urlsafe(32)
    ttl = _ttl(purpose)
    now = utcnow()
    db.session.add(
        AccountToken(
            token_hash=hash_token(secret),
            purpose=purpose,
            user_id=user.id,
            email=email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return secret


def _ttl(purpose: str) -> int:
    """Seconds a link of this purpose stays valid."""
    config = current_app.config["AUTHSERVER"]
    if purpose == RESET_PASSWORD:
        return int(config.password_reset_ttl)
    return int(config.email_verification_ttl)


def _recently_sent(user: User, purpose: str, email: str) -> bool:
    """True when a link for this purpose and address went out less than RESEND_INTERVAL ago."""
    since = utcnow() - RESEND_INTERVAL
    found = db.session.scalar(
        select(AccountToken.id)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == purpose,
            AccountToken.email == email,
            AccountToken.created_at > since,
        )
        .limit(1)
    )
    return found is not None


def _void_tokens(user: User, purpose: str, email: str | None = None) -> None:
    """Mark the person's outstanding tokens of this purpose (and address) used; caller commits."""
    statement = update(AccountToken).where(
        AccountToken.user_id == user.id,
        AccountToken.purpose == purpose,
        AccountToken.used_at.is_(None),
    )
    if email is not None:
        statement = statement.where(AccountToken.email == email)
    db.session.execute(statement.values(used_at=utcnow()))


def _find_by_email(address: str) -> User | None:
    """The person with this normalized e-mail, active or not."""
    return db.session.scalar(select(User).where(User.email == address))


# Links and wording


def absolute_url(endpoint: str, **values: Any) -> str:
    """The issuer-based URL of an endpoint, for e-mails (works outside a request too)."""
    config = current_app.config["AUTHSERVER"]
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return f"{config.issuer}{path}"


def describe_duration(seconds: int) -> str:
    """A lifetime in words: "30 minutes", "24 hours", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "day" and seconds <= 86400):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
