"""OpenID Connect Back-Channel Logout 1.0 section 2.4: the Logout Token.

https://openid.net/specs/openid-connect-backchannel-1_0.html#LogoutToken
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from ..clients.cache import OAuthClient
from ..core import capabilities
from ..extensions import utcnow
from ..keys import current_keyring
from ..keys.jws import sign_compact
from .id_token import DEFAULT_ID_TOKEN_ALG

# Section 2.4 recommends a short lifetime: "two minutes or less".
LOGOUT_TOKEN_TTL = 120


def logout_token_claims(
    client: OAuthClient, *, sub: str | None, sid: str | None, jti: str
) -> dict[str, Any]:
    """Section 2.4: iss, aud, iat, exp, jti, events, and sub and/or sid; never a nonce."""
    if sub is None and sid is None:
        raise ValueError("a logout token needs a sub or a sid")
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "iss": current_app.config["AUTHSERVER"].issuer,
        "aud": client.client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": jti,
        "events": {capabilities.BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    if sub is not None:
        claims["sub"] = sub
    if sid is not None:
        claims["sid"] = sid
    return claims


def create_logout_token(client: OAuthClient, *, sub: str | None, sid: str | None, jti: str) -> str:
    """Section 2.6: signed as the client's id_tokens are (its id_token_signed_response_alg),
    with the `typ` header `logout+jwt` (section 2.4, RFC 8725 section 3.11)."""
    alg = client.id_token_signed_response_alg or DEFAULT_ID_TOKEN_ALG
    kid, key = current_keyring().signing_key(alg)
    claims = logout_token_claims(client, sub=sub, sid=sid, jti=jti)
    return sign_compact(claims, key, alg=alg, kid=kid, typ=capabilities.LOGOUT_TOKEN_TYPE)
