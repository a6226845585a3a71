"""Sign-up: a new, unverified account and its verification link.

Nothing here tells a visitor whether an address has an account: sign-up answers the
same and does the same work either way, down to one rendered mail, one outbox row and
one commit (OWASP Authentication Cheat Sheet, "Authentication and error messages");
mail is queued in the outbox (authserver.mail) and never sent inside the request.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..mail import render_mail, send_mail
from ..mail.links import absolute_url
from .email_change import queue_verification
from .models import User
from .passwords import hash_password
from .services import (
    AccountError,
    add_user,
    check_password_policy,
    find_by_email,
    is_valid_email,
    normalize_email,
)

MAX_NAME_LENGTH = 200


def register(email: str, password: str, name: str) -> User | None:
    """Create an unverified account and queue its verification link (the request commits).

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
    owner = find_by_email(address)
    if owner is None:
        user = add_user(address, password=password, name=cleaned_name)
        queue_verification(user, address)
        try:
            db.session.flush()  # one flush: the account, its link, its mail
        except IntegrityError:
            db.session.rollback()  # a failed flush leaves the session unusable until then
            owner = find_by_email(address)  # lost a race with a sign-up for the same address
            if owner is None:  # not the address after all: nothing was stored
                raise AccountError("The account could not be created. Try again.") from None
        else:
            return user
    hash_password(password)  # the work add_user would have done
    _tell_owner_about_signup(owner)
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
