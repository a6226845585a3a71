"""The subject identifier a client sees for a person (OpenID Connect Core section 8).

Every `sub` sent to a client (id_token, userinfo, access token, introspection, logout
token) comes from `subject_for`, so that the subject type a client registered is applied
on every path.
"""

from __future__ import annotations

from typing import Any


def subject_for(user: Any, client: Any) -> str:
    """Section 8: the `sub` this client receives for this person (`public` for now)."""
    return str(user.sub)
