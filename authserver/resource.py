"""What a Flask resource server needs to accept authserver's access tokens, offline.

RFC 9068 (JWT access tokens) verified against the issuer's JWKS, and RFC 6750
errors. Usable on its own: it imports neither the server's app nor its database.

    from authserver.resource import ResourceServer

    api = ResourceServer(issuer="https://id.example.com", audience="https://api.example.com/")

    @app.get("/notes")
    @api.require_token(scopes=["notes:read"])
    def notes():
        return {"owner": current_token()["sub"]}
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, TypeGuard, TypeVar

from flask import Response, g, jsonify, request
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

F = TypeVar("F", bound=Callable[..., Any])
ACCESS_TOKEN_TYP = "at+jwt"
ALGORITHMS = ("ES256", "RS256")
# Longest token we try to parse; anything larger is not one of the issuer's.
MAX_TOKEN_LENGTH = 8192


def _is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (RFC 7519 NumericDate); `true` is not one, though Python says it is an int."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


class TokenError(Exception):
    """RFC 6750 section 3.1: why a request was refused, and with which status."""

    def __init__(self, status: int, error: str | None, description: str = "", scope: str = ""):
        super().__init__(description or error or "unauthorized")
        self.status = status
        self.error = error
        self.description = description
        self.scope = scope

    def challenge(self, realm: str) -> str:
        """The WWW-Authenticate value; no error attributes when no token was sent."""
        parts = [f'realm="{realm}"']
        if self.error:
            parts.append(f'error="{self.error}"')
        if self.description:
            parts.append(f'error_description="{self.description}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        return "Bearer " + ", ".join(parts)


class ResourceServer:
    """Verifies access tokens for one audience, with the issuer's keys cached in memory.

    The JWKS is found through the issuer's discovery document, kept for
    `jwks_ttl` seconds, and fetched again at once (but at most every
    `refresh_interval` seconds) when a token names a `kid` it does not hold,
    which is how a key rotation at the issuer reaches us.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        *,
        jwks_ttl: float = 300,
        refresh_interval: float = 10,
        leeway: int = 30,
        timeout: float = 5,
        realm: str = "api",
        fetch: Callable[[str], Any] | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_ttl = jwks_ttl
        self.refresh_interval = refresh_interval
        self.leeway = leeway
        self.timeout = timeout
        self.realm = realm
        self._fetch = fetch or self._fetch_json
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._fetched_at = float("-inf")
        self._jwks_uri: str | None = None

    # Keys

    def _fetch_json(self, url: str) -> Any:
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
            return json.load(response)

    def _jwks_url(self) -> str:
        if self._jwks_uri is None:
            metadata = self._fetch(self.issuer + "/.well-known/openid-configuration")
            if metadata.get("issuer") != self.issuer:
                raise ValueError("the discovery document names another issuer")
            self._jwks_uri = str(metadata["jwks_uri"])
        return self._jwks_uri

    def _load_keys(self, *, force: bool) -> KeySet:
        with self._lock:
            now = time.monotonic()
            age = now - self._fetched_at
            stale = self._keys is None or age > self.jwks_ttl
            if stale or (force and age > self.refresh_interval):
                self._keys = KeySet.import_key_set(self._fetch(self._jwks_url()))
                self._fetched_at = now
            assert self._keys is not None
            return self._keys

    def _key_for(self, kid: str) -> Any:
        for force in (False, True):
            keys = self._load_keys(force=force)
            for key in keys.keys:
                if key.kid == kid:
                    return key
        return None

    # Tokens

    def verify(self, token: str) -> dict[str, Any]:
        """RFC 9068 section 4: the claims of a valid access token for this audience.

        Whatever the token holds, the answer is its claims or a TokenError (401
        invalid_token): a header or claim of an unexpected JSON type is refused, never
        allowed to raise something else.
        """
        header = self._header(token)
        typ, alg, kid = header.get("typ"), header.get("alg"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
            raise TokenError(401, "invalid_token", "The token is not an access token.")
        if alg not in ALGORITHMS or not isinstance(kid, str):
            raise TokenError(401, "invalid_token", "The token is not signed as expected.")
        key = self._key_for(kid)
        if key is None:
            raise TokenError(401, "invalid_token", "The token is signed by an unknown key.")
        try:
            claims = jwt.decode(token, key, algorithms=[str(alg)]).claims
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise TokenError(401, "invalid_token", "The token signature is invalid.") from None
        if not isinstance(claims, dict):
            raise TokenError(401, "invalid_token", "The token has no claims object.")
        self._check_claims(claims)
        return claims

    @staticmethod
    def _header(token: Any) -> dict[str, Any]:
        """The protected header of a compact JWS, or 401 for anything else."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(401, "invalid_token", "The token is malformed.")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise TokenError(401, "invalid_token", "The token is malformed.") from None
        if not isinstance(header, dict):
            raise TokenError(401, "invalid_token", "The token is malformed.")
        return header

    def _check_claims(self, claims: dict[str, Any]) -> None:
        """RFC 9068 section 4 and RFC 7519 section 4.1: issuer, audience, times, and types."""
        now = time.time()
        if claims.get("iss") != self.issuer:
            raise TokenError(401, "invalid_token", "The token is from another issuer.")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenError(401, "invalid_token", "The token is meant for another audience.")
        exp = claims.get("exp")
        if not _is_number(exp) or exp + self.leeway < now:
            raise TokenError(401, "invalid_token", "The token has expired.")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf - self.leeway > now):
            raise TokenError(401, "invalid_token", "The token is not valid yet.")
        if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("scope", ""), str):
            raise TokenError(401, "invalid_token", "The token's sub or scope is malformed.")
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise TokenError(401, "invalid_token", "The token's roles are malformed.")

    def authorize(self, scopes: Iterable[str] = (), roles: Iterable[str] = ()) -> dict[str, Any]:
        """Verify this request's bearer token and check it carries the scopes and roles."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise TokenError(401, None)
        if scheme.lower() != "bearer" or not token.strip():
            raise TokenError(400, "invalid_request", "Use the Bearer scheme.")
        claims = self.verify(token.strip())
        needed = list(scopes)
        granted = set(str(claims.get("scope", "")).split())
        if not set(needed) <= granted:
            raise TokenError(
                403, "insufficient_scope", "The token lacks a scope.", " ".join(needed)
            )
        held = set(claims.get("roles") or [])
        if not set(roles) <= held:
            raise TokenError(403, "insufficient_scope", "The token lacks a role.")
        return claims

    def require_token(
        self, scopes: Iterable[str] = (), roles: Iterable[str] = ()
    ) -> Callable[[F], F]:
        """Decorate a view: 401/403 with a WWW-Authenticate challenge unless the token fits."""
        scopes, roles = tuple(scopes), tuple(roles)

        def decorator(view: F) -> F:
            @functools.wraps(view)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    g.access_token_claims = self.authorize(scopes, roles)
                except TokenError as error:
                    return self.error_response(error)
                except (OSError, ValueError, KeyError):
                    # The issuer's keys could not be fetched: not the caller's fault.
                    return self.unavailable()
                return view(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorator

    def error_response(self, error: TokenError) -> Response:
        body = {"error": error.error, "error_description": error.description}
        response = jsonify(body) if error.error else Response(status=error.status)
        response.status_code = error.status
        response.headers["WWW-Authenticate"] = error.challenge(self.realm)
        response.headers["Cache-Control"] = "no-store"
        return response

    def unavailable(self) -> Response:
        response = jsonify(
            error="temporarily_unavailable", error_description="The issuer cannot be reached."
        )
        response.status_code = 503
        response.headers["Retry-After"] = str(int(self.refresh_interval))
        return response


def current_token() -> dict[str, Any]:
    """The verified claims of the current request's access token."""
    claims: dict[str, Any] = g.access_token_claims
    return claims
