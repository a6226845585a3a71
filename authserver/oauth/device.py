"""RFC 8628: the device authorization grant, the person's side.

A device with no browser asks the device authorization endpoint
(`endpoints/device_authorization.py`) for a `device_code` and a short `user_code`
(section 3.1, 3.2), shows the code to the person, who enters it at `verification_uri`
and approves (section 3.3: the pages in `device_views`, the decisions here), while the
device polls the token endpoint with the `device_code` (section 3.4, 3.5:
`grants/device_code.py`). The device code is stored only as its SHA-256 hash; every
change of a code's `status` (pending -> approved | denied, approved -> used) is one
atomic UPDATE.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select, update

from ..extensions import db, utcnow
from ..sessions.models import LoginSession
from .models import DeviceCode
from .services import limit_user_scope

# Section 6.1: consonants only (no vowels, so no words; no look-alike digits), 8 characters
# (20^8, about 34.5 bits), shown as XXXX-XXXX; case, spaces and dashes are ignored on entry.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
USER_CODE_RE = re.compile(f"[{USER_CODE_ALPHABET}]{{{USER_CODE_LENGTH}}}")


def normalize_user_code(value: str | None) -> str | None:
    """Section 6.1: the stored form (upper case, no separators), or None when it cannot be one."""
    if not isinstance(value, str) or len(value) > 4 * USER_CODE_LENGTH:
        return None
    # Phones may turn a typed "-" into a typographic dash (U+2010 to U+2015).
    code = re.sub(r"[\s\-\u2010-\u2015]", "", value).upper()
    return code if USER_CODE_RE.fullmatch(code) else None


def format_user_code(code: str) -> str:
    """The stored form as people read it: XXXX-XXXX."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def find_pending_code(user_code: str | None) -> DeviceCode | None:
    """A live code still waiting for a decision; None for wrong, expired or decided ones."""
    code = normalize_user_code(user_code)
    if code is None:
        return None
    return db.session.scalar(
        select(DeviceCode).where(
            DeviceCode.user_code == code,
            DeviceCode.status == "pending",
            DeviceCode.expires_at > utcnow(),
        )
    )


def approve_device_code(row: DeviceCode, session: LoginSession) -> bool:
    """Section 3.3: the signed-in person allowed the device. False if already decided.

    RFC 6749 section 3.3: the scope narrows to what this person may have.
    """
    return _decide(
        row,
        status="approved",
        scope=limit_user_scope(session.user, row.scope),
        user_id=session.user_id,
        session_id=session.id,
        auth_time=session.auth_time,
        amr=list(session.amr or []),
        acr=session.acr,
    )


def deny_device_code(row: DeviceCode) -> bool:
    """Section 3.3: the person refused; the device gets access_denied."""
    return _decide(row, status="denied")


def _decide(row: DeviceCode, **values: Any) -> bool:
    """One atomic UPDATE of a pending code, in the request's unit of work (it commits)."""
    decided = db.session.execute(
        update(DeviceCode)
        .where(
            DeviceCode.id == row.id,
            DeviceCode.status == "pending",
            DeviceCode.expires_at > utcnow(),
        )
        .values(**values)
    )
    return bool(decided.rowcount == 1)  # type: ignore[attr-defined]
