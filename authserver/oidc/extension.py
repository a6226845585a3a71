"""Adds the ID Token to token responses whose scope includes `openid`.

OpenID Connect Core section 3.1.3.3 (code grant) and section 12.2 (refresh:
same `sub` and `auth_time`, no `nonce`).
"""

from __future__ import annotations

from typing import Any

from ..sessions.services import record_client, sid_of
from .id_token import create_id_token


class OpenIDConnect:
    """An Authlib grant extension for the code, refresh and device grants (their `family`)."""

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_create_token_response", self.add_id_token)

    def add_id_token(self, grant: Any, response: tuple[int, dict[str, Any], Any]) -> None:
        _, token, _ = response
        scope = token.get("scope", "")
        if "openid" not in scope.split():
            return
        request = grant.request
        family = grant.family
        code = request.authorization_code if grant.GRANT_TYPE == "authorization_code" else None
        if family.session_id and grant.GRANT_TYPE != "refresh_token":
            # Back-Channel Logout 1.0 section 2.5: whom to tell when the session ends.
            record_client(family.session_id, request.client.client_id)
        token["id_token"] = create_id_token(
            client=request.client,
            user=request.user,
            scope=scope,
            auth_time=family.auth_time,
            amr=list(family.amr or []),
            acr=family.acr,
            nonce=code.nonce if code is not None else None,
            access_token=token["access_token"],
            claims_request=family.claims,
            organization_id=family.organization_id,
            # Back-Channel Logout 1.0 section 2.1 / Front-Channel Logout 1.0 section 3:
            # the browser session the tokens were issued under (none for other grants).
            sid=sid_of(family.session_id) if family.session_id else None,
        )
