"""Accounts: create people, look them up, check their password."""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from ..extensions import db
from .models import Role, User, new_subject
from .passwords import hash_password, needs_rehash, verify_dummy, verify_password

log = logging.getLogger(__name__)

# RFC 5321 section 4.5.3.1: at most 64 octets local part, 254 in a forward path.
MAX_EMAIL_LENGTH = 254
# NIST SP 800-63B section 5.1.1.2: at least 8 characters; a ceiling keeps hashing bounded.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# Deliberately loose: one @, no spaces or control characters, a dot-free host is allowed
# (intranets); the real proof of an address is a verification e-mail.
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]+$")


class AccountError(ValueError):
    """An account cannot be created or changed; the message says why."""


def normalize_email(email: str) -> str:
    """The stored form of an e-mail address: trimmed and lower-cased."""
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    """True for a plausible, already normalized e-mail address."""
    return len(email) <= MAX_EMAIL_LENGTH and _EMAIL_RE.match(email) is not None


def create_user(
    email: str,
    *,
    password: str | None,
    name: str = "",
    roles: list[str] | None = None,
    email_verified: bool = False,
) -> User:
    """Create a person (flushed, not committed); unknown role names become new roles."""
    address = normalize_email(email)
    if not is_valid_email(address):
        raise AccountError(f"not a valid e-mail address: {email!r}")
    if password is not None:
        check_password_policy(password)
    if db.session.scalar(select(User.id).where(User.email == address)) is not None:
        raise AccountError(f"a user with the e-mail {address} already exists")
    user = add_user(
        address, password=password, name=name, roles=roles, email_verified=email_verified
    )
    try:
        db.session.flush()  # the unique address is checked here; the caller commits
    except IntegrityError:
        # Lost a race with another request creating the same address. A failed flush leaves
        # the session unusable until rolled back, and the unit of work is refused anyway.
        db.session.rollback()
        raise AccountError(f"a user with the e-mail {address} already exists") from None
    return user


def add_user(
    email: str,
    *,
    password: str | None,
    name: str = "",
    roles: list[str] | None = None,
    email_verified: bool = False,
) -> User:
    """Add a person to the session, not flushed or committed: the caller commits.

    The unique address is enforced by the database at that commit (IntegrityError).
    """
    address = normalize_email(email)
    if not is_valid_email(address):
        raise AccountError(f"not a valid e-mail address: {email!r}")
    if password is not None:
        check_password_policy(password)
    user = User(
        sub=new_subject(),
        email=address,
        name=name.strip(),
        email_verified=email_verified,
        password_hash=hash_password(password) if password is not None else None,
        roles=[_role(role_name) for role_name in dict.fromkeys(roles or [])],
    )
    db.session.add(user)
    return user


def check_password_policy(password: str) -> None:
    """Raise AccountError when a new password is too short or too long."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def _role(name: str) -> Role:
    """The role called `name`, created (not builtin) when it does not exist yet."""
    role_name = name.strip()
    if not role_name or len(role_name) > 64:
        raise AccountError(f"not a valid role name: {name!r}")
    role = db.session.scalar(select(Role).where(Role.name == role_name))
    if role is None:
        role = Role(name=role_name, description="", permissions=[], builtin=False)
        db.session.add(role)
    return role


def authenticate(email: str, password: str) -> User | None:
    """The active person with this e-mail and password, or None."""
    return check_password(find_for_sign_in(email), password)


def find_for_sign_in(email: str) -> User | None:
    """The person a typed e-mail address names, active or not, or None.

    One query for every well-formed address, known or not; none for a malformed one, which
    no account can have. Sign-in looks the person up once and hands them to the password
    check, the lockout and the audit alike.
    """
    address = normalize_email(email)
    return find_by_email(address) if is_valid_email(address) else None


def check_password(user: User | None, password: str) -> User | None:
    """`user` when `password` is theirs and they are active, else None.

    Exactly one argon2id verification whatever `user` is: None (an unknown e-mail) and a
    person without a password are checked against a dummy hash, so response time does not
    tell which addresses have accounts (OWASP Authentication Cheat Sheet).
    """
    if user is None or not user.password_hash or len(password) > MAX_PASSWORD_LENGTH:
        verify_dummy(password[:MAX_PASSWORD_LENGTH])
        return None
    if not verify_password(user.password_hash, password):
        return None
    if not user.is_active:
        return None
    if needs_rehash(user.password_hash):
        _rehash(user, password)
    return user


# Built once: every sign-in attempt runs it.
_USER_BY_EMAIL = select(User).where(User.email == bindparam("email")).options(lazyload(User.roles))


def find_by_email(address: str) -> User | None:
    """The person with this normalized e-mail, active or not; roles load only when used.

    One query whether or not the address has an account: eager-loading the roles would
    add a second one for known addresses only, and the pages that look addresses up
    (sign-in, sign-up, reset) must not take longer for them.
    """
    return db.session.scalar(_USER_BY_EMAIL, {"email": address})


def _rehash(user: User, password: str) -> None:
    """Store a hash made with the current argon2id parameters."""
    user.password_hash = hash_password(password)
    log.info("rehashed the password of user %s with the current parameters", user.id)


def get_user_by_sub(sub: str) -> User | None:
    """The person with this OpenID Connect subject identifier, or None."""
    if not isinstance(sub, str) or not sub or len(sub) > 64:
        return None
    return db.session.scalar(select(User).where(User.sub == sub))


def typed_address(email: Any) -> str | None:
    """A typed e-mail address fit for the audit log: normalized and well formed, else None."""
    if not isinstance(email, str):
        return None
    address = normalize_email(email)
    return address if is_valid_email(address) else None


def sub_of(user_id: int | None) -> str | None:
    """The `sub` of the person with this database id, for an audit event's subject."""
    user = db.session.get(User, user_id) if user_id is not None else None
    return user.sub if user is not None else None


def greeting_name(user: User) -> str:
    """The display name for a mail's greeting, only once the address is proven the person's.

    The name is text the account holder chose; until the address is verified, the holder
    may be anyone who typed it, and the name would carry their words to its inbox.
    """
    return user.name if user.email_verified else ""


def list_users() -> list[User]:
    """Every person, active or not, by e-mail address."""
    return list(db.session.scalars(select(User).order_by(User.email)))


def count_users() -> int:
    """How many people have an account, active or not."""
    return int(db.session.scalar(select(func.count()).select_from(User)) or 0)
