"""Access tokens (RFC 9068 JWTs), opaque secrets, and their verification.

An access token is self-contained: issuing one writes nothing. Its `jti` is
`<grant id>.<random>` when it was issued under a grant (a person's
authorization), so revoking the grant revokes every access token issued under
it without recording each one; single tokens revoked by RFC 7009 are recorded
by `jti` until they expire.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, exists, or_, select

from ..clients.cache import load_client
from ..core import epoch
from ..core.secrets import new_token
from ..extensions import db, utcnow
from ..keys import current_keyring
from ..keys.jws import compact_header, sign_compact, verify_compact
from .models import Grant, RevokedAccessToken

ACCESS_TOKEN_TYP = "at+jwt"
# Longest token we try to parse; anything larger is not ours.
MAX_TOKEN_LENGTH = 8192
# Verified tokens remembered per process (decode_access_token); about 2 KB each.
VERIFIED_CACHE = "authserver.oauth.verified"
VERIFIED_CACHE_SIZE = 2048


def new_jti(grant_id: str | None) -> str:
    suffix = new_token(12)
    return f"{grant_id}.{suffix}" if grant_id else suffix


def grant_id_of(jti: str) -> str | None:
    """The grant an access token was issued under, read back from its `jti`."""
    head, sep, _ = jti.partition(".")
    return head if sep else None


def issue_access_token(
    *,
    client_id: str,
    subject: str,
    scope: str,
    audience: str | list[str],
    grant_id: str | None,
    auth_time: int | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, int]:
    """RFC 9068 section 2: sign an access token; returns (token, expires_in)."""
    config = current_app.config["AUTHSERVER"]
    alg = config.access_token_alg
    kid, key = current_keyring().signing_key(alg)
    client = load_client(client_id)  # cached: the token endpoint has just loaded it
    now = client.issue_at(time.time()) if client is not None else int(time.time())
    claims: dict[str, Any] = {
        "iss": config.issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "iat": now,
        "exp": now + config.access_token_ttl,
        "jti": new_jti(grant_id),
        "scope": scope,
    }
    if auth_time is not None:
        claims["auth_time"] = auth_time
    if extra:
        claims.update(extra)
    token = sign_compact(claims, key, alg=alg, kid=kid, typ=ACCESS_TOKEN_TYP)
    return token, config.access_token_ttl


@dataclass(frozen=True)
class AccessToken:
    """A verified access token: its claims and, if any, the grant it belongs to."""

    claims: dict[str, Any]

    @property
    def jti(self) -> str:
        return str(self.claims["jti"])

    @property
    def grant_id(self) -> str | None:
        return grant_id_of(self.jti)

    @property
    def scopes(self) -> list[str]:
        return str(self.claims.get("scope", "")).split()


def decode_access_token(token: str) -> AccessToken | None:
    """Check signature, type, issuer and expiry; None for anything that is not a live token of ours.

    Revocation is checked separately (`is_revoked`), because it costs a database read.
    A token that verified is remembered by its exact string (a resource server presents
    the same one on every call): later it only has to be unexpired and its key still
    published, which skips the signature check (a tenth of a millisecond for ES256).
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    verified: dict[str, tuple[str, dict[str, Any]]] = current_app.extensions.setdefault(
        VERIFIED_CACHE, {}
    )
    hit = verified.get(token)
    if hit is not None:
        kid, claims = hit
        if claims["exp"] > time.time() and current_keyring().verification_key(kid) is not None:
            return AccessToken(claims)
        verified.pop(token, None)
        return None
    found = _verified_claims(token)
    if found is None:
        return None
    if len(verified) >= VERIFIED_CACHE_SIZE:
        verified.clear()
    verified[token] = found
    return AccessToken(found[1])


def _verified_claims(token: str) -> tuple[str, dict[str, Any]] | None:
    """RFC 9068 section 4: the `kid` and claims of a valid, unexpired token of ours."""
    header = compact_header(token)
    if header is None:
        return None
    alg, kid = header.get("alg"), header.get("kid")
    if header.get("typ") != ACCESS_TOKEN_TYP or alg not in ("ES256", "RS256") or not kid:
        return None
    key = current_keyring().verification_key(str(kid))
    if key is None or key.alg != alg:
        return None
    claims = verify_compact(token, key, str(alg))
    if claims is None:
        return None
    config = current_app.config["AUTHSERVER"]
    now = int(utcnow().timestamp())
    exp = claims.get("exp")
    if claims.get("iss") != config.issuer or not isinstance(exp, int) or exp <= now:
        return None
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("sub"), str):
        return None
    return str(kid), claims


# Built once: constructing a statement costs more than running it (bench/).
_REVOKED_ALONE = select(exists().where(RevokedAccessToken.jti == bindparam("jti")))
_REVOKED_WITH_GRANT = select(
    or_(
        exists().where(RevokedAccessToken.jti == bindparam("jti")),
        ~exists().where(Grant.id == bindparam("grant_id"), Grant.revoked_at.is_(None)),
    )
)


# core.epoch's cache of `is_revoked` answers, by `jti`.
REVOKED_CACHE = "oauth.revoked"


def is_revoked(token: AccessToken) -> bool:
    """RFC 7009: revoked on its own, through its grant (family revocation) or its client.

    The answer is cached per process until revocation state changes anywhere (core.epoch:
    at most a second on other instances, at once on this one): a resource server
    introspecting the same token on each call costs no database read after the first.
    """
    at = epoch.current()
    answer = epoch.cached(REVOKED_CACHE, token.jti, at)
    if answer is None:
        answer = _revoked_in_database(token)
        epoch.remember(REVOKED_CACHE, token.jti, at, answer)
    return bool(answer)


def _revoked_in_database(token: AccessToken) -> bool:
    """A client's rotation of its secret or its disabling revokes every access token issued
    to it before (`tokens_not_before`), so tokens minted with a leaked secret do not come
    back when the client is enabled again. One query at most; the client is cached.
    """
    client = load_client(str(token.claims.get("client_id")))
    if client is not None and client.issued_too_early(token.claims.get("iat")):
        return True
    grant_id = token.grant_id
    if grant_id is None:
        # A client's own token (client_credentials) lives as long as its client is active.
        return client is None or bool(db.session.scalar(_REVOKED_ALONE, {"jti": token.jti}))
    # A grant that no longer exists (deleted with its client or user) revokes its tokens too.
    return bool(db.session.scalar(_REVOKED_WITH_GRANT, {"jti": token.jti, "grant_id": grant_id}))


def verify_access_token(token: str) -> AccessToken | None:
    """A live, unrevoked access token of ours, or None."""
    decoded = decode_access_token(token)
    if decoded is None or is_revoked(decoded):
        return None
    return decoded
