"""The bench client's side of both servers: the flows it drives and the processes it counts.

`IssuerUnderTest` is one OpenID provider on 127.0.0.1 as the benchmark's confidential
client sees it: the authorization code flow with PKCE, refresh, client credentials and
introspection over HTTP, and the server's processes for CPU accounting.
bench/target.py's `Authserver` and bench/peer.py's `Peer` add what differs: how each is
started and stopped, what a browser meets on the way to the code, which tokens its
introspection and userinfo endpoints take. The `check_*` functions are the smoke-check
steps both pass alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
# The scope of the benchmark's authorization requests: OpenID, a refresh token, the API.
BENCH_SCOPE = "openid profile email offline_access read"
# OpenID scopes only: no resource, so the peer issues an opaque token its userinfo accepts.
USERINFO_SCOPE = "openid profile email"
RESOURCE = "https://api.bench.example"


class IssuerError(RuntimeError):
    """An issuer could not be set up, started or driven."""


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 section 4.1-4.2: a code_verifier and its S256 code_challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class IssuerUnderTest(ABC):
    """One server on 127.0.0.1:`port`, driven as the bench client: `start()`, drive, `stop()`."""

    name: str
    # What a failure raises: each server's own error, which its callers catch.
    error: type[IssuerError] = IssuerError
    # The statuses the authorization endpoint may redirect to redirect_uri with.
    authorize_statuses: tuple[int, ...] = (302, 303)

    def __init__(self, port: int, workers: int, alg: str, redis_url: str) -> None:
        if alg not in ("ES256", "RS256"):
            raise ValueError(f"alg must be ES256 or RS256, not {alg!r}")
        self.port = port
        self.workers = workers
        self.alg = alg
        self.redis_url = redis_url
        self.issuer = f"http://127.0.0.1:{port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.redirect_uri = "http://127.0.0.1:9/callback"
        # Fixed in the peer's server.js; read from `clients create --json` by authserver.
        self.client_id = ""
        self.client_secret = ""
        # Read from discovery by start().
        self.token_endpoint = ""
        self.authorization_endpoint = ""
        self.introspection_endpoint = ""
        self.revocation_endpoint = ""
        self.userinfo_endpoint = ""
        self.jwks_uri = ""
        self._process: subprocess.Popen[Any] | None = None
        # The server's own browser session, for userinfo_token() and refresh_tokens().
        self._cookies: dict[str, str] | None = None

    # -- process ---------------------------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Start the server in its own process group and read discovery."""

    @abstractmethod
    def stop(self) -> None:
        """End the server's process group and forget its session."""

    def _discover(self) -> None:
        """OpenID Connect Discovery 1.0 section 4: every endpoint from the issuer's metadata."""
        metadata = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT).json()
        if metadata["issuer"] != self.issuer:
            raise self.error(f"discovery names issuer {metadata['issuer']}, not {self.issuer}")
        self.token_endpoint = metadata["token_endpoint"]
        self.authorization_endpoint = metadata["authorization_endpoint"]
        self.introspection_endpoint = metadata["introspection_endpoint"]
        self.revocation_endpoint = metadata["revocation_endpoint"]
        self.userinfo_endpoint = metadata["userinfo_endpoint"]
        self.jwks_uri = metadata["jwks_uri"]

    def pids(self) -> list[int]:
        """The server's primary and all its descendants (the workers), for CPU accounting."""
        if self._process is None:
            return []
        primary = self._process.pid
        found = [primary]
        for pid in found:
            found.extend(child for child in _children(pid) if child not in found)
        return found

    def worker_pids(self) -> list[int]:
        """The worker processes only: the primary's direct children."""
        if self._process is None:
            return []
        return _children(self._process.pid)

    # -- the authorization code flow ---------------------------------------------------

    def authorize_url(self, code_challenge: str, scope: str = BENCH_SCOPE) -> str:
        """The authorization request the load generator replays (RFC 6749 section 4.1.1).

        The benchmark makes one `pkce_pair()`, requests `authorize_url(challenge)` with the
        cookies of `browser_session()` (GET, no redirects followed): authserver answers
        302, oidc-provider 303, to `redirect_uri?code=...&state=...&iss=...`. It then
        POSTs to `token_endpoint`, with HTTP Basic client_id:client_secret
        (client_secret_basic), the form `grant_type=authorization_code, code,
        redirect_uri, code_verifier`. The same state, nonce and verifier may serve every
        request; each code is new.
        """
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": "bench-state",
            "nonce": "bench-nonce",
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.authorization_endpoint}?{urlencode(params)}"

    def browser_session(self) -> dict[str, str]:
        """Sign in once, as a browser would; the cookies it keeps for the authorize path.

        With these cookies `authorize_url()` answers with a code, no interaction. Each
        call is a new session.
        """
        session = requests.Session()
        _, challenge = pkce_pair()
        self._follow_to_code(session, self.authorize_url(challenge))
        authorize_path = urlsplit(self.authorization_endpoint).path
        cookies = {
            cookie.name: cookie.value
            for cookie in session.cookies
            if cookie.value is not None
            and not cookie.is_expired()
            and authorize_path.startswith(cookie.path)
        }
        # The promise the benchmark relies on: the cookies alone get a code.
        self.authorize(cookies, pkce_pair()[1])
        return cookies

    def _follow_to_code(self, session: requests.Session, url: str) -> str:
        """Follow redirects, and `_interact()` with the pages between, to the code."""
        response = session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(10):
            location = response.headers.get("Location")
            if response.status_code in (302, 303) and location is not None:
                target = urljoin(response.url, location)
                if target.startswith(self.redirect_uri):
                    return self._code_from(target)
                response = session.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
            else:
                response = self._interact(session, response)
        raise self.error("too many steps on the way to the authorization code")

    def _interact(
        self, session: requests.Session, response: requests.Response
    ) -> requests.Response:
        """What a browser does with a page on the way to the code; here, none is expected."""
        raise self.error(
            f"{response.request.method} {response.url} answered "
            f"{response.status_code}: {response.text[:300]}"
        )

    def authorize(self, cookies: dict[str, str], challenge: str, scope: str = BENCH_SCOPE) -> str:
        """One authorization request in a signed-in session: straight to the code."""
        response = requests.get(
            self.authorize_url(challenge, scope),
            cookies=cookies,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        location = response.headers.get("Location", "")
        if response.status_code not in self.authorize_statuses or not location.startswith(
            self.redirect_uri
        ):
            raise self.error(f"authorize answered {response.status_code} to {location[:200]!r}")
        return self._code_from(location)

    def _code_from(self, redirect: str) -> str:
        """RFC 6749 section 4.1.2: the code in the redirect, or the error it carries."""
        query = parse_qs(urlsplit(redirect).query)
        if "code" not in query:
            error = f"{query.get('error')} {query.get('error_description')}"
            raise self.error(f"authorization failed: {error}")
        return query["code"][0]

    def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        """RFC 6749 section 4.1.3 with RFC 7636 section 4.5: the code for tokens."""
        return self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """RFC 6749 section 6: a refresh token for a new access and refresh token."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        """RFC 6749 section 3.2: one token request, authenticated with client_secret_basic."""
        response = requests.post(
            self.token_endpoint,
            data=form,
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise self.error(f"token endpoint answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def _code_flow(self, scope: str) -> dict[str, Any]:
        """A code flow in the server's own session (signed in on first use)."""
        if self._cookies is None:
            self._cookies = self.browser_session()
        verifier, challenge = pkce_pair()
        return self.exchange_code(self._code_in_session(self._cookies, challenge, scope), verifier)

    def _code_in_session(self, cookies: dict[str, str], challenge: str, scope: str) -> str:
        """An authorization code in the signed-in session `cookies`."""
        return self.authorize(cookies, challenge, scope)

    def new_session(self) -> None:
        """Forget the server's own browser session: the next flow signs in afresh.

        For after a replayed refresh token revoked the grant behind that session (every
        token of the peer's `refresh_tokens()` shares it): the next pool gets a new grant.
        """
        self._cookies = None

    # -- tokens ------------------------------------------------------------------------

    @abstractmethod
    def userinfo_token(self) -> str:
        """An access token this server's userinfo endpoint accepts."""

    def refresh_tokens(self, n: int) -> list[str]:
        """`n` refresh tokens from `n` code flows, each usable once (rotation)."""
        self._code_flow(BENCH_SCOPE)  # signs in before the threads share the cookies
        with ThreadPoolExecutor(max_workers=8) as pool:
            flows = pool.map(lambda _: self._code_flow(BENCH_SCOPE), range(n))
            return [str(tokens["refresh_token"]) for tokens in flows]

    def access_token(self) -> str:
        """A client_credentials JWT access token (RFC 9068) for the API."""
        form = {"grant_type": "client_credentials", "scope": "read"}
        return str(self._token(form)["access_token"])

    @abstractmethod
    def introspection_token(self) -> str:
        """An access token this server's introspection endpoint answers as active."""

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 section 2.1, authenticated as the bench client."""
        response = requests.post(
            self.introspection_endpoint,
            data={"token": token},
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        body: dict[str, Any] = response.json()
        return body


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in task.read_text().split())
        except OSError:
            continue
    return sorted(set(found))


# -- the smoke checks both servers pass -------------------------------------------------


def expect(issuer: IssuerUnderTest, condition: bool, what: str) -> None:
    """A smoke check's step: raise the issuer's own error unless `condition` holds."""
    if not condition:
        raise issuer.error(f"smoke check failed: {what}")


def jwt_part(token: str, index: int) -> dict[str, Any]:
    """One unverified part of a compact JWT, 0 the header, 1 the payload (for the eyes only)."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def check_discovery(issuer: IssuerUnderTest) -> None:
    """Discovery answers, and offers PKCE with S256 only."""
    metadata = requests.get(issuer.discovery_url, timeout=HTTP_TIMEOUT).json()
    expect(issuer, metadata["code_challenge_methods_supported"] == ["S256"], "PKCE S256 only")
    print("OK discovery")


def check_client_credentials(issuer: IssuerUnderTest) -> str:
    """A client_credentials JWT for the API, in the issuer's alg, for 900 s; the token."""
    access_token = issuer.access_token()
    header, claims = jwt_part(access_token, 0), jwt_part(access_token, 1)
    expect(issuer, header["typ"] == "at+jwt" and header["alg"] == issuer.alg, f"JWT {header}")
    expect(issuer, claims["aud"] == RESOURCE and claims["exp"] - claims["iat"] == 900, f"{claims}")
    print(f"OK client_credentials ({issuer.alg} JWT access token, 900 s)")
    return access_token


def check_code_flow(issuer: IssuerUnderTest) -> tuple[dict[str, str], dict[str, Any]]:
    """A browser session, a code from its cookies alone, tokens for it; cookies and tokens."""
    cookies = issuer.browser_session()
    verifier, challenge = pkce_pair()
    tokens = issuer.exchange_code(issuer.authorize(cookies, challenge), verifier)
    id_header, id_claims = jwt_part(tokens["id_token"], 0), jwt_part(tokens["id_token"], 1)
    access_claims = jwt_part(tokens["access_token"], 1)
    expect(issuer, access_claims["aud"] == RESOURCE, "code flow JWT for the API")
    expect(issuer, id_header["alg"] == "RS256" and "refresh_token" in tokens, f"{id_header}")
    expect(issuer, id_claims["exp"] - id_claims["iat"] == 900, "id_token lifetime 900 s")
    return cookies, tokens


def check_refresh(issuer: IssuerUnderTest, tokens: dict[str, Any]) -> dict[str, Any]:
    """The refresh token rotates and the old one is refused after; the rotated tokens."""
    old = tokens["refresh_token"]
    rotated = issuer.refresh(old)
    expect(issuer, rotated["refresh_token"] != old, "refresh token rotated")
    expect(issuer, jwt_part(rotated["access_token"], 1)["aud"] == RESOURCE, "refreshed JWT")
    try:
        issuer.refresh(old)
    except IssuerError as replayed:
        expect(issuer, "invalid_grant" in str(replayed), str(replayed))
    else:
        raise issuer.error("smoke check failed: a rotated refresh token was accepted again")
    print("OK refresh (rotated; the old refresh token is refused)")
    return rotated


def check_introspection(issuer: IssuerUnderTest) -> None:
    """`introspection_token()` active at every worker; a refresh token active for 30 days."""
    token = issuer.introspection_token()
    # Fresh connections, so that every worker answers (node's primary deals them in turn).
    answers = [issuer.introspect(token) for _ in range(2 * max(issuer.workers, 1))]
    expect(issuer, all(answer.get("active") is True for answer in answers), f"{answers}")
    [refresh_token] = issuer.refresh_tokens(1)
    about = issuer.introspect(refresh_token)
    expect(issuer, about.get("active") is True, f"refresh token introspection {about}")
    expect(issuer, about["exp"] - about["iat"] == 30 * 24 * 3600, "refresh token lifetime 30 days")


def check_userinfo(issuer: IssuerUnderTest) -> dict[str, Any]:
    """Userinfo answers 200 to `userinfo_token()`; its claims."""
    userinfo = requests.get(
        issuer.userinfo_endpoint,
        headers={"Authorization": f"Bearer {issuer.userinfo_token()}"},
        timeout=HTTP_TIMEOUT,
    )
    expect(issuer, userinfo.status_code == 200, f"userinfo {userinfo.status_code} {userinfo.text}")
    claims: dict[str, Any] = userinfo.json()
    return claims
