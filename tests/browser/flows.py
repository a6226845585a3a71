"""The relying party's side of the protocol, over real HTTP: authorize URLs, code exchange,
id_token verification, refresh."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.browser.pages import Tour
from tests.browser.servers import LiveServer
from tests.factories import PASSWORD
from tests.oauth_helpers import pkce_pair

SCOPE = "openid profile email offline_access"


@dataclass
class CodeRequest:
    """One authorization request: the URL to send the browser to, and what to check after."""

    client_id: str
    redirect_uri: str
    scope: str = SCOPE
    extra: dict[str, str] = field(default_factory=dict)
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = ""
    challenge: str = ""

    def __post_init__(self) -> None:
        self.verifier, self.challenge = pkce_pair()

    def url(self, live: LiveServer) -> str:
        """OpenID Connect Core section 3.1.2.1, with PKCE S256 (RFC 7636 section 4.3)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            **self.extra,
        }
        return f"{live.url}/authorize?{urlencode(params)}"


def sign_in(tour: Tour, email: str = "alice@example.com", password: str = PASSWORD) -> None:
    """Fill in the sign-in page the browser is on and submit it."""
    page = tour.page
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    tour.submit("Sign in")


def exchange_code(
    live: LiveServer, request: CodeRequest, secret: str | None, code: str
) -> dict[str, Any]:
    """RFC 6749 section 4.1.3 with the PKCE code_verifier; the client authenticates by Basic."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": request.redirect_uri,
        "code_verifier": request.verifier,
    }
    auth = (request.client_id, secret) if secret else None
    if secret is None:
        data["client_id"] = request.client_id
    response = live.http.post(f"{live.url}/oauth2/token", data=data, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(live: LiveServer, client_id: str, secret: str, refresh_token: str) -> requests.Response:
    """RFC 6749 section 6: use a refresh token."""
    return live.http.post(
        f"{live.url}/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(client_id, secret),
        timeout=10,
    )


def verify_id_token(live: LiveServer, token: str, client_id: str, nonce: str) -> dict[str, Any]:
    """OpenID Connect Core section 3.1.3.7: signature against the JWKS, then the claims."""
    keys = KeySet.import_key_set(
        live.http.get(f"{live.url}/.well-known/jwks.json", timeout=10).json()
    )
    decoded = jwt.decode(token, keys, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": live.url},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        auth_time={"essential": True},
    ).validate(decoded.claims)
    claims: dict[str, Any] = decoded.claims
    return claims
