"""OpenID Connect Core section 2: the ID Token, signed with the client's registered algorithm."""

from __future__ import annotations

import base64
from datetime import datetime
from hashlib import sha256
from typing import Any

from flask import current_app

from ..accounts.models import User
from ..clients.cache import OAuthClient
from ..extensions import utcnow
from ..keys import current_keyring
from ..keys.jws import sign_compact
from .claims import release_claims
from .subjects import subject_for

DEFAULT_ID_TOKEN_ALG = "RS256"


def half_hash(value: str) -> str:
    """Section 3.1.3.6 `at_hash`: base64url of the left half of SHA-256 (RS256 and ES256)."""
    digest = sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def create_id_token(
    *,
    client: OAuthClient,
    user: User,
    scope: str,
    auth_time: datetime,
    amr: list[str] | None = None,
    acr: str | None = None,
    nonce: str | None = None,
    access_token: str | None = None,
    claims_request: dict[str, Any] | None = None,
    sid: str | None = None,
    organization_id: int | None = None,
) -> str:
    """Sign an ID Token for this person and client; never `alg: none`, always with a `kid`."""
    config = current_app.config["AUTHSERVER"]
    alg = client.id_token_signed_response_alg or DEFAULT_ID_TOKEN_ALG
    kid, key = current_keyring().signing_key(alg)
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = release_claims(
        user,
        scope,
        claims_request,
        "id_token",
        organization_id,
        claims_in_id_token=client.claims_in_id_token,
        subject=subject_for(user, client),
    )
    claims.update(
        {
            "iss": config.issuer,
            "aud": client.client_id,
            "exp": now + config.id_token_ttl,
            "iat": now,
            "auth_time": int(auth_time.timestamp()),
        }
    )
    if nonce:
        claims["nonce"] = nonce
    if access_token:
        claims["at_hash"] = half_hash(access_token)
    if amr:
        claims["amr"] = list(amr)
    if acr:
        claims["acr"] = acr
    if sid:
        claims["sid"] = sid
    return sign_compact(claims, key, alg=alg, kid=kid, typ="JWT")
