"""Self-service accounts: sign-up, e-mail verification and change, password reset.

Every e-mailed link carries `secrets.token_urlsafe(32)`; the database keeps only its
SHA-256 (an `AccountToken`), each link works once (an atomic UPDATE ... WHERE
used_at IS NULL) and expires. Nothing here tells a visitor whether an address has
an account: sign-up and "forgot password" answer the same and do the same work
either way, down to one rendered mail, one outbox row and one commit (OWASP
Authentication Cheat Sheet, "Authentication and error messages"); mail is queued in
the outbox (authserver.mail) and never sent inside the request.

Mails to an address not yet proven to be the person's carry no text the requester
chose (no display name): see `greeting_name`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..audit import record
from ..extensions import db, utcnow
from ..mail import render_mail, send_mail
from ..oauth.models import Grant
from ..oauth.services import revoke_grant
from ..orgs.services import revoke_invitations_to
from ..sessions.models import LoginSession
from . import totp
from .models import AccountToken, User
from .passwords import hash_password
from .services import (
    AccountError,
    add_user,
    check_password_policy,
    find_by_email,
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
    """Create an unverified account and queue its verification link; commits once.

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
        user = add_user(address, password=password, name=cleaned_name)
        _queue_verification(user, address)
        try:
            db.session.commit()  # one flush and one commit: the account, its link, its mail
        except IntegrityError:
            db.session.rollback()
            owner = _find_by_email(address)  # lost a race with a sign-up for the same address
            if owner is None:  # not the address after all: nothing was stored
                raise AccountError("The account could not be created. Try again.") from None
        else:
            return user
    hash_password(password)  # the work add_user would have done
    _tell_owner_about_signup(owner)
    db.session.commit()
    return None


def _tell_owner_about_signup(owner: User) -> None:
    """Queue a notice to the owner of an address that someone tried to sign up with.

    No name in it: the account may be a squatter's, its address nobody's proof.
    """
    context = {
        "email": owner.email,
        "link": absolute_url("accounts.login", login_hint=owner.email),
        "reset_link": absolute_url("accounts.forgot_password"),
    }
    if owner.is_active:
        send_mail("signup_existing", owner.email, account=owner.sub, **context)
    else:
        render_mail(
            "signup_existing", owner.email, reason="account_disabled", account=owner.sub, **context
        )


def greeting_name(user: User) -> str:
    """The display name for a mail's greeting, only once the address is proven the person's.

    The name is text the account holder chose; until the address is verified, the holder
    may be anyone who typed it, and the name would carry their words to its inbox.
    """
    return user.name if user.email_verified else ""


# E-mail verification and change


def send_verification_email(user: User, email: str | None = None) -> None:
    """Queue a verification link for `email` (a new address) or the current one; commits."""
    address = normalize_email(email) if email else user.email
    if _recently_sent(user.id, VERIFY_EMAIL, address):
        return
    _queue_verification(user, address)
    db.session.commit()


def _queue_verification(user: User, address: str) -> None:
    """Issue a verification token for `address` and queue its mail (not committed)."""
    token = _issue(user, VERIFY_EMAIL, address)
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
    checked a fresh proof (accounts.proof); commits.
    """
    address = normalize_email(new_email)
    if not is_valid_email(address):
        raise AccountError("Enter a valid e-mail address.")
    if address == user.email:
        raise AccountError("This is already your e-mail address.")
    if _recently_sent(user.id, VERIFY_EMAIL, address):
        return
    token = _issue(user, VERIFY_EMAIL, address)
    if _find_by_email(address) is None:
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
    db.session.commit()


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
    """Queue a reset link when the address has an active account; otherwise the same work.

    Either way: one user lookup, one "sent lately?" lookup, one rendered mail, one
    outbox row (suppressed when no link goes out), one commit. Commits.
    """
    address = normalize_email(email)
    user = _find_by_email(address) if is_valid_email(address) else None
    recent = _recently_sent(user.id if user is not None else None, RESET_PASSWORD, address)
    token = secrets.token_urlsafe(32)
    ttl = current_app.config["AUTHSERVER"].password_reset_ttl
    context = {
        "name": greeting_name(user) if user is not None else "",
        "email": address,
        "link": absolute_url("accounts.reset_password", token=token),
        "valid_for": describe_duration(ttl),
    }
    if user is None or not user.is_active or recent:
        hash_token(token)
        reason = "unknown_account" if user is None else "not_sent"
        account = user.sub if user is not None else None
        render_mail("reset_password", address, reason=reason, account=account, **context)
    else:
        _issue(user, RESET_PASSWORD, user.email, token=token)
        send_mail("reset_password", user.email, account=user.sub, **context)
    db.session.commit()


def reset_password(token: str, new_password: str) -> User | None:
    """Set a new password through a reset link; every session and token of the person ends.

    The link proves the mailbox: the address becomes verified, every other account link
    is cancelled (`cancel_account_links`), and an account that had never been verified
    loses its two-step factors, which whoever held the address before may have enrolled
    (a squatter who signed up with someone else's address keeps nothing).
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
    was_verified = user.email_verified
    user.password_hash = password_hash
    user.password_changed_at = utcnow()
    end_all_sessions_and_tokens(user)
    cancel_account_links(user, address_was_verified=was_verified)
    if row.email == user.email:
        user.email_verified = True  # the link reached this mailbox
        if not was_verified and totp.remove_factors(user):
            record("two_step.removed", subject=user.sub, details={"reason": "address_proven"})
    record("password.reset", actor=user.sub, actor_type="user", subject=user.sub)
    send_mail(
        "password_changed",
        user.email,
        account=user.sub,
        name=greeting_name(user),
        email=user.email,
        link=absolute_url("accounts.forgot_password"),
    )
    db.session.commit()
    log.info("user %s reset their password; all sessions and grants revoked", user.id)
    return user


def cancel_account_links(user: User, *, address_was_verified: bool) -> None:
    """A new password voids every outstanding link that could change the account; no commit.

    Pending e-mail change links and password reset links are voided, so a session or
    mailbox borrowed before the change cannot move or take the account later; while the
    address was unverified, pending organization invitations to it are revoked too
    (whoever held the account then had not proven the mailbox). A verification link for
    the current address stays: it only proves what the account already claims.
    """
    db.session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.used_at.is_(None),
            or_(
                AccountToken.purpose == RESET_PASSWORD,
                and_(AccountToken.purpose == VERIFY_EMAIL, AccountToken.email != user.email),
            ),
        )
        .values(used_at=utcnow())
    )
    if not address_was_verified:
        revoke_invitations_to(user.email)


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
            user=user,
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


def _recently_sent(user_id: int | None, purpose: str, email: str) -> bool:
    """True when a link for this purpose and address went out less than RESEND_INTERVAL ago.

    `user_id` None (an unknown address) runs the same query and finds nothing.
    """
    since = utcnow() - RESEND_INTERVAL
    found = db.session.scalar(
        select(AccountToken.id)
        .where(
            AccountToken.user_id == user_id,
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
    """The person with this normalized e-mail, active or not (one query either way)."""
    return find_by_email(address)


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
