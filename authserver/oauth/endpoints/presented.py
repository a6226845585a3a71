"""Finding a presented token, whatever its kind, for revocation and introspection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ...core.secrets import hash_secret
from ...extensions import db, utcnow
from ..models import Grant, RefreshToken
from ..tokens import AccessToken, decode_access_token, is_revoked


@dataclass
class PresentedToken:
    """A token a client presented: a decoded access token or a refresh token row."""

    access: AccessToken | None = None
    refresh: RefreshToken | None = None

    @property
    def client_id(self) -> str:
        if self.access is not None:
            return str(self.access.claims.get("client_id"))
        assert self.refresh is not None
        return self.refresh.client_id

    def check_client(self, client: Any) -> bool:
        return self.client_id == client.get_client_id()

    def is_active(self) -> bool:
        """RFC 7662 section 2.2: issued by us, not expired, not revoked."""
        if self.access is not None:
            return not is_revoked(self.access)
        assert self.refresh is not None
        row = self.refresh
        if row.revoked_at is not None or row.used_at is not None or row.expires_at <= utcnow():
            return False
        grant = db.session.get(Grant, row.grant_id)
        return grant is not None and grant.revoked_at is None


def find_token(value: str, hint: str | None) -> PresentedToken | None:
    """RFC 7009 section 2.1: the hint only orders the search; every kind is tried."""
    if not isinstance(value, str) or not value or len(value) > 8192:
        return None
    finders = [_find_access, _find_refresh]
    if hint == "refresh_token":
        finders.reverse()
    for finder in finders:
        found = finder(value)
        if found is not None:
            return found
    return None


def _find_access(value: str) -> PresentedToken | None:
    if value.count(".") != 2:
        return None
    access = decode_access_token(value)
    return PresentedToken(access=access) if access is not None else None


def _find_refresh(value: str) -> PresentedToken | None:
    if len(value) > 512:
        return None
    row = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(value))
    )
    return PresentedToken(refresh=row) if row is not None else None
