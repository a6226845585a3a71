"""A relying party's back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0).

    authserver clients create --name "Example web app" \\
        --redirect-uri http://127.0.0.1:8080/callback \\
        --backchannel-logout-uri http://127.0.0.1:8080/backchannel-logout \\
        --grant-type authorization_code --scope openid --auth-method client_secret_basic
    AUTHSERVER_ISSUER=http://127.0.0.1:5000 WEBAPP_CLIENT_ID=... \\
        .venv/bin/python examples/backchannel_logout.py

When a person signs out of authserver (or a password reset, an administrator or a
disabled account ends their session), the server POSTs `logout_token=<JWT>` here. The
endpoint checks it as section 2.6 says, then ends its own sessions for that `sid` (or,
without one, for that `sub`) and answers 200; any failure answers 400 (section 2.8).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class InvalidLogoutToken(Exception):
    """The token failed a check of section 2.6; answer 400."""


def fetch_jwks(issuer: str) -> KeySet:
    """The issuer's signing keys, found through discovery (fetch again on an unknown kid)."""
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    return KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=5).json())


def verify_logout_token(token: str, keys: KeySet, issuer: str, client_id: str) -> dict[str, Any]:
    """Section 2.6: the claims of a valid logout token, or InvalidLogoutToken."""
    try:
        # 1-2. A signed JWT (never alg none), by one of the issuer's keys.
        decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
        # 3. iss, aud, iat and exp (a short lifetime), and a jti to spot replays.
        JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as error:
        raise InvalidLogoutToken(str(error)) from None
    claims = decoded.claims
    if decoded.header.get("typ") != "logout+jwt":  # section 2.4: explicit typing
        raise InvalidLogoutToken("not a logout token (typ)")
    if not isinstance(claims.get("events"), dict) or EVENT not in claims["events"]:  # 4.
        raise InvalidLogoutToken("no back-channel logout event")
    if not claims.get("sub") and not claims.get("sid"):  # 5.
        raise InvalidLogoutToken("neither sub nor sid")
    if "nonce" in claims:  # 7. an ID Token is not a logout token
        raise InvalidLogoutToken("a logout token has no nonce")
    return claims


def create_receiver(
    issuer: str, client_id: str, end_sessions: Callable[[str | None, str | None], None]
) -> Flask:
    """The endpoint: verify, end the local sessions (`end_sessions(sid, sub)`), answer 200."""
    app = Flask(__name__)
    keys: dict[str, KeySet] = {}
    seen: dict[str, float] = {}  # jti -> exp; use a shared store with expiry in production

    @app.post("/backchannel-logout")
    def backchannel_logout() -> tuple[str, int, dict[str, str]]:
        headers = {"Cache-Control": "no-store"}
        token = request.form.get("logout_token", "")
        try:
            if "jwks" not in keys:
                keys["jwks"] = fetch_jwks(issuer)
            try:
                claims = verify_logout_token(token, keys["jwks"], issuer, client_id)
            except InvalidLogoutToken:
                keys["jwks"] = fetch_jwks(issuer)  # the key may be new: fetch once, retry
                claims = verify_logout_token(token, keys["jwks"], issuer, client_id)
        except InvalidLogoutToken as error:
            app.logger.warning("refused a logout token: %s", error)
            return "", 400, headers
        now = time.time()
        for jti in [j for j, exp in seen.items() if exp < now]:
            del seen[jti]
        if claims["jti"] not in seen:  # a retry of a token already acted on changes nothing
            seen[claims["jti"]] = claims["exp"]
            end_sessions(claims.get("sid"), claims.get("sub"))
        return "", 200, headers

    return app


if __name__ == "__main__":

    def end_sessions(sid: str | None, sub: str | None) -> None:
        print(f"end every local session with sid={sid} (or of sub={sub})")

    create_receiver(
        os.environ.get("AUTHSERVER_ISSUER", "http://127.0.0.1:5000"),
        os.environ["WEBAPP_CLIENT_ID"],
        end_sessions,
    ).run(port=8080)
