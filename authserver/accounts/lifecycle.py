"""An account's lifecycle: a new password, and ending everything a person signed into.

`set_password` is the one way a password changes (reset link, account page, command
line): the policy, the hash, the end of the other sessions and of every token, the
voiding of pending account links, the audit event and the notice mail are all here, so
no path can forget one (OWASP Session Management Cheat Sheet: a password change
invalidates the other sessions; OWASP Forgot Password Cheat Sheet: tell the owner).
"""

from __future__ import annotations

import logging
from typing import Literal

from ..audit import Actor, record
from ..extensions import utcnow
from ..mail import send_mail
from ..mail.links import absolute_url
from ..orgs.services import revoke_invitations_to
from ..sessions.models import LoginSession
from ..sessions.services import revoke_sessions
from . import totp
from .links import void_links_that_change_the_account
from .models import User
from .passwords import hash_password
from .services import check_password_policy, greeting_name
from .signals import signed_out_everywhere

log = logging.getLogger(__name__)

PasswordReason = Literal["reset", "changed", "admin"]
# The audit event of each way a password is set.
PASSWORD_EVENTS: dict[str, str] = {
    "reset": "password.reset",
    "changed": "password.changed",
    "admin": "admin.user.password_set",
}


def set_password(
    user: User,
    new_password: str,
    *,
    reason: PasswordReason,
    actor: Actor,
    keep_session_id: str | None = None,
    address_proven: bool = False,
    password_hash: str | None = None,
) -> None:
    """Give the person a new password; everything the old one opened ends. No commit.

    Raises AccountError when the password breaks the policy. Every session but
    `keep_session_id` ends and every grant is revoked (`end_all_sessions_and_tokens`);
    pending links that could change the account are voided (`cancel_account_links`);
    the event `PASSWORD_EVENTS[reason]` is recorded and the owner gets the
    `password_changed` notice. `address_proven`: the password came through a link
    sent to the account's address, which is verified now (`prove_address`).
    `password_hash`: `hash_password(new_password)` computed before the caller locked a
    row (hashing is slow; no lock should wait for it).
    """
    check_password_policy(new_password)
    was_verified = bool(user.email_verified)
    user.password_hash = password_hash or hash_password(new_password)
    user.password_changed_at = utcnow()
    end_all_sessions_and_tokens(user, keep_session_id=keep_session_id)
    cancel_account_links(user, address_was_verified=was_verified)
    if address_proven:
        prove_address(user, was_verified=was_verified)
    record(PASSWORD_EVENTS[reason], actor=actor, subject=user.sub)
    send_mail(
        "password_changed",
        user.email,
        account=user.sub,
        name=greeting_name(user),
        email=user.email,
        link=absolute_url("accounts.forgot_password"),
    )
    log.info("password of user %s set (%s); other sessions and grants revoked", user.id, reason)


def prove_address(user: User, *, was_verified: bool) -> None:
    """A link sent to the address was opened: it is verified now; no commit.

    An account that had never been verified loses its two-step factors, which whoever
    held the address before may have enrolled (a squatter who signed up with someone
    else's address keeps nothing).
    """
    user.email_verified = True
    if not was_verified and totp.remove_factors(user):
        record("two_step.removed", subject=user.sub, details={"reason": "address_proven"})


def cancel_account_links(user: User, *, address_was_verified: bool) -> None:
    """A new password voids every outstanding link that could change the account; no commit.

    Pending e-mail change links and password reset links are voided, so a session or
    mailbox borrowed before the change cannot move or take the account later; while the
    address was unverified, pending organization invitations to it are revoked too
    (whoever held the account then had not proven the mailbox).
    """
    void_links_that_change_the_account(user)
    if not address_was_verified:
        revoke_invitations_to(user.email)


def end_all_sessions_and_tokens(user: User, keep_session_id: str | None = None) -> None:
    """Sign out every session of `user` (but `keep_session_id`) and revoke every grant.

    The grants are revoked by the receivers of `signals.signed_out_everywhere` (oauth:
    a grant's refresh and access tokens end with it). The caller commits.
    """
    if keep_session_id is None:
        revoke_sessions(LoginSession.user_id == user.id)
    else:
        revoke_sessions(LoginSession.user_id == user.id, LoginSession.id != keep_session_id)
    signed_out_everywhere.send(user)
