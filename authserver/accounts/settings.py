"""The account page's services: profile, password, sign-in sessions and connected apps.

Every lookup here is scoped to the signed-in person (`user`), so a reference taken
from someone else's page finds nothing (OWASP: insecure direct object references).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from ..audit import Actor, record
from ..extensions import db, utcnow
from ..sessions.models import LoginSession
from ..sessions.services import revoke_sessions
from . import links
from .email_change import request_email_change
from .lifecycle import set_password
from .models import User
from .proof import ProofError, check_fresh_proof
from .services import AccountError, check_password_policy, is_valid_email, normalize_email

MAX_NAME_LENGTH = 200
CURRENT_PASSWORD_WRONG = "Your current password is not correct."
# A session is named on the page by the first 16 hex digits of its id (64 bits):
# enough to tell one person's sessions apart, and never the whole stored id.
SESSION_REFERENCE_LENGTH = 16
_SESSION_REFERENCE_RE = re.compile(r"^[0-9a-f]{16}$")

# User-agent sniffing for a human label only, never for a decision. Order matters:
# Edge and Opera also say "Chrome", Chrome also says "Safari", Android also says "Linux".
_BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"Chrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bVersion/[\d.]+.*\bSafari/")),
    ("curl", re.compile(r"^curl/")),
)
_SYSTEMS = (
    ("Windows", re.compile(r"\bWindows\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("iOS", re.compile(r"\biPhone\b|\biPod\b")),
    ("iPadOS", re.compile(r"\biPad\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b|\bX11\b")),
)


class PasswordChangeError(AccountError):
    """The password was not changed; `field` names the form input the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class SessionSummary:
    """One line of the sessions list; `reference` names it in the sign-out form."""

    reference: str
    device: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    is_current: bool


def update_name(user: User, name: str) -> None:
    """Change the person's display name (OpenID Connect `name` claim)."""
    cleaned = " ".join(name.split())
    if len(cleaned) > MAX_NAME_LENGTH:
        raise AccountError(f"The name can have at most {MAX_NAME_LENGTH} characters.")
    user.name = cleaned


def request_new_email(user: User, new_email: str, credential: str) -> str:
    """Send a verification link to `new_email`; the address changes only once it is opened.

    Needs a fresh proof (accounts.proof: the password, or a code with two-step
    verification on); raises ProofError without it, AccountError for a bad address.
    Returns the normalized address the link went to.
    """
    address = normalize_email(new_email)
    if not is_valid_email(address):
        raise AccountError("Enter a valid e-mail address.")
    if address == user.email:
        raise AccountError("This is already your e-mail address.")
    check_fresh_proof(user, credential)
    request_email_change(user, address)
    return address


def pending_email(user: User) -> str | None:
    """The new address waiting for its verification link to be opened, if any."""
    return links.pending_email(user)


def change_password(
    user: User, credential: str, new_password: str, confirmation: str, keep_session_id: str
) -> None:
    """Replace the password after a fresh proof; every other sign-in and account link ends.

    The proof (accounts.proof) is the current password, or with two-step verification
    on a code from the app; it is rate limited and counted by the account lockout.
    OWASP Session Management Cheat Sheet: a password change invalidates the other
    sessions; the person's refresh tokens and grants are revoked too, so a thief
    holding an old token loses it with the old password. Pending e-mail change and
    reset links are voided, and the address is told (all in lifecycle.set_password).

    Two-step factors stay, even on an account whose address was never verified: the
    person changing the password is signed in and has just proven it, and removing
    their factor would leave a real owner who has not yet opened the verification mail
    weaker. A squatter's factors go when the address's owner proves the mailbox by a
    password reset (password_reset.reset_password).
    """
    try:
        check_fresh_proof(user, credential)
    except ProofError as error:
        message = CURRENT_PASSWORD_WRONG if error.reason == "wrong" else str(error)
        raise PasswordChangeError("current_password", message) from None
    try:
        check_password_policy(new_password)
    except AccountError as error:
        raise PasswordChangeError("new_password", _sentence(str(error))) from None
    if new_password != confirmation:
        raise PasswordChangeError("confirm_password", "The two new passwords do not match.")
    set_password(
        user,
        new_password,
        reason="changed",
        actor=Actor("user", user.sub),
        keep_session_id=keep_session_id,
    )


def _sentence(message: str) -> str:
    """A service message as a sentence for the page."""
    message = message.strip()
    if not message:
        return message
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")


def live_sessions(user: User) -> list[LoginSession]:
    """The person's sessions that are neither revoked nor expired, most recently used first."""
    query = _live_sessions_of(user).order_by(
        LoginSession.last_seen_at.desc(), LoginSession.created_at.desc()
    )
    return list(db.session.scalars(query))


def _live_sessions_of(user: User) -> Select[LoginSession]:
    """The query for the person's sessions that are neither revoked nor expired."""
    return select(LoginSession).where(
        LoginSession.user_id == user.id,
        LoginSession.revoked_at.is_(None),
        LoginSession.expires_at > utcnow(),
    )


def session_summaries(user: User, current_session_id: str | None) -> list[SessionSummary]:
    """What the sessions section shows: each live session, this browser's marked."""
    return [
        SessionSummary(
            reference=session_reference(login_session),
            device=describe_device(login_session.user_agent),
            ip=login_session.ip or "unknown",
            created_at=login_session.created_at,
            last_seen_at=login_session.last_seen_at,
            is_current=login_session.id == current_session_id,
        )
        for login_session in live_sessions(user)
    ]


def session_reference(login_session: LoginSession) -> str:
    """The short, opaque name of a session used in the page's forms."""
    return login_session.id[:SESSION_REFERENCE_LENGTH]


def find_session(user: User, reference: str) -> LoginSession | None:
    """The person's live session named by `reference`, or None (also for someone else's)."""
    if not _SESSION_REFERENCE_RE.match(reference):
        return None
    matches = db.session.scalars(
        _live_sessions_of(user).where(LoginSession.id.startswith(reference, autoescape=True))
    ).all()
    return matches[0] if len(matches) == 1 else None


def revoke_session(login_session: LoginSession) -> None:
    """Sign one session out."""
    if revoke_sessions(LoginSession.id == login_session.id):
        record("session.revoked", subject=login_session.user.sub, details={"sessions": 1})


def revoke_other_sessions(user: User, keep_session_id: str) -> None:
    """Sign out every session of the person but this one; tokens stay valid."""
    ended = revoke_sessions(LoginSession.user_id == user.id, LoginSession.id != keep_session_id)
    record("session.revoked", subject=user.sub, details={"sessions": len(ended)})


def describe_device(user_agent: str | None) -> str:
    """A short label such as "Chrome on Linux" from a User-Agent header."""
    agent = (user_agent or "").strip()
    browser = next((name for name, pattern in _BROWSERS if pattern.search(agent)), None)
    system = next((name for name, pattern in _SYSTEMS if pattern.search(agent)), None)
    if browser and system:
        return f"{browser} on {system}"
    if browser or system:
        return browser or f"A browser on {system}"
    return "Unknown device"
