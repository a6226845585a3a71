"""Account links: the single-use tokens behind e-mailed verification and reset links.

Every link carries `core.secrets.new_token()`; the database keeps only its hash (an
`AccountToken`), each link works once (`core.once.use_once`) and expires. A new link
for the same person, purpose and address goes out at most every RESEND_INTERVAL.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from ..core.once import use_once
from ..core.secrets import hash_secret, new_token
from ..extensions import db, utcnow
from .models import AccountToken, User

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
# A new link for the same person, purpose and address goes out at most this often,
# so a form cannot be used to flood someone's mailbox.
RESEND_INTERVAL = timedelta(seconds=60)
# new_token() is 43 characters; anything much longer is not ours.
MAX_TOKEN_LENGTH = 128


def issue(user: User, purpose: str, email: str, token: str | None = None) -> str:
    """Add a link token for `user` (not committed) and return its secret value."""
    secret = token or new_token()
    now = utcnow()
    db.session.add(
        AccountToken(
            token_hash=hash_secret(secret),
            purpose=purpose,
            user=user,
            email=email,
            created_at=now,
            expires_at=now + timedelta(seconds=lifetime(purpose)),
        )
    )
    return secret


def lifetime(purpose: str) -> int:
    """Seconds a link of this purpose stays valid."""
    config = current_app.config["AUTHSERVER"]
    if purpose == RESET_PASSWORD:
        return int(config.password_reset_ttl)
    return int(config.email_verification_ttl)


def peek_token(token: str, purpose: str) -> AccountToken | None:
    """The live (unused, unexpired) token for this link, without using it."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = db.session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == hash_secret(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        return None
    return row


def consume(token: str, purpose: str) -> AccountToken | None:
    """Mark a live token used, atomically: of two concurrent requests only one gets it.

    The loser's transaction is rolled back.
    """
    row = peek_token(token, purpose)
    if row is None:
        return None
    if not use_once(AccountToken, row.id):
        db.session.rollback()
        return None
    return row


def recently_sent(user_id: int | None, purpose: str, email: str) -> bool:
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


def void_tokens(user: User, purpose: str, email: str | None = None) -> None:
    """Mark the person's outstanding tokens of this purpose (and address) used; no commit."""
    statement = update(AccountToken).where(
        AccountToken.user_id == user.id,
        AccountToken.purpose == purpose,
        AccountToken.used_at.is_(None),
    )
    if email is not None:
        statement = statement.where(AccountToken.email == email)
    db.session.execute(statement.values(used_at=utcnow()))


def void_links_that_change_the_account(user: User) -> None:
    """Void pending reset links and links to a new address; no commit.

    A verification link for the current address stays: it only proves what the account
    already claims.
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


def pending_email(user: User) -> str | None:
    """The new address waiting for its verification link to be opened, if any."""
    return db.session.scalar(
        select(AccountToken.email)
        .where(
            AccountToken.user_id == user.id,
            AccountToken.purpose == VERIFY_EMAIL,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > utcnow(),
            AccountToken.email.is_not(None),
            AccountToken.email != user.email,
        )
        .order_by(AccountToken.created_at.desc())
        .limit(1)
    )
