"""`id_token_hint`: is this an ID Token we issued, and whom does it name?

OpenID Connect Core section 3.1.2.1 (at /authorize) and RP-Initiated Logout 1.0
section 2 (at /logout) both take an ID Token this server issued as a hint about
the person. Both verify it here, in one function, so neither can accept what the
other refuses: our signature and key, `typ` of an ID Token (never an RFC 9068
access token, `at+jwt`, which is signed with the same keys), our `iss`, a `sub`
and an `aud`. An expired hint is fine: Core says the hint may be presented "even
when the exp time has passed", and logout needs exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import JoseError

from ..core import capabilities
from ..keys import current_keyring

# Algorithms our ID Tokens are signed with (oidc.id_token and the client registry).
ID_TOKEN_ALGS = capabilities.ID_TOKEN_SIGNING_ALGS
# RFC 7519 section 5.1: what oidc.id_token writes; media types compare case-insensitively.
ID_TOKEN_TYPES = ("jwt", "application/jwt")
MAX_ID_TOKEN_LENGTH = 16 * 1024


class InvalidIdTokenHint(ValueError):
    """The hint is not an ID Token this server issued."""


@dataclass(frozen=True)
class IdTokenHint:
    """The claims of a verified `id_token_hint` that /authorize and /logout rely on."""

    sub: str
    audiences: tuple[str, ...]
    azp: str | None
    iat: int | None


def verify_id_token_hint(value: str) -> IdTokenHint:
    """The hint's claims when it is an ID Token we issued; raises InvalidIdTokenHint otherwise."""
    claims = _verified_claims(value)
    if claims is None:
        raise InvalidIdTokenHint("not an ID Token issued by this server")
    sub, aud, azp, iat = claims.get("sub"), claims.get("aud"), claims.get("azp"), claims.get("iat")
    audiences = (aud,) if isinstance(aud, str) else tuple(aud) if isinstance(aud, list) else ()
    if (
        claims.get("iss") != current_app.config["AUTHSERVER"].issuer
        or not isinstance(sub, str)
        or not sub
        or not audiences
        or not all(isinstance(item, str) for item in audiences)
        or not (azp is None or isinstance(azp, str))
    ):
        raise InvalidIdTokenHint("not an ID Token issued by this server")
    return IdTokenHint(sub, audiences, azp, iat if type(iat) is int else None)


def _verified_claims(value: str) -> dict[str, Any] | None:
    """The claims of a compact JWS with an ID Token's `typ`, signed by one of our keys."""
    if not isinstance(value, str) or len(value) > MAX_ID_TOKEN_LENGTH or value.count(".") != 2:
        return None  # not a JWS (a JWE has five parts)
    try:
        header = jws.extract_compact(value.encode("ascii")).headers()
        if not isinstance(header, dict):
            return None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ID_TOKEN_ALGS or not isinstance(kid, str):
            return None
        if not isinstance(typ, str) or typ.lower() not in ID_TOKEN_TYPES:
            return None  # an access token (`at+jwt`) is no hint about a sign-in
        key = current_keyring().verification_key(kid)
        if key is None:
            return None
        claims = jwt.decode(value, key, algorithms=[alg]).claims
    except (JoseError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None
