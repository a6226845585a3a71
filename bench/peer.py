"""The benchmark's peer: panva's node-oidc-provider, set up for the same work as authserver.

`bench/peer/server.js` is the issuer (one confidential client, one user, Redis storage
shared by a node `cluster` of workers); `Peer` starts and stops it and obtains what the
load generator replays: a signed-in browser session, refresh tokens and access tokens.

    .venv/bin/python bench/peer.py [--alg ES256|RS256] [--workers 2]

installs the node packages when needed, starts the peer and checks every path the
benchmark uses, printing OK for each.

Where oidc-provider differs from authserver, and what the benchmark must do about it:

- It refuses to introspect (or revoke) JWT access tokens: `unsupported_token_type`, by
  design. `introspection_token()` is an opaque client_credentials token (for the
  resource `OPAQUE_RESOURCE`, stored in Redis) that introspects as active at any worker;
  `access_token()`, the JWT, does not.
- Its userinfo endpoint refuses any access token with an audience, so the resource-bound
  JWT access tokens of the code flow are refused there. `userinfo_token()` is an opaque
  token from a code flow that names only OpenID scopes (no API scope, so no resource).
- Replaying a rotated refresh token revokes the whole grant, as authserver does: every
  refresh token from `refresh_tokens()` shares the one grant of the peer's own session.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

PEER_DIR = Path(__file__).resolve().parent / "peer"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
# The scope of the benchmark's authorization requests: OpenID, a refresh token, the API.
BENCH_SCOPE = "openid profile email offline_access read"
# OpenID scopes only: no resource, so an opaque access token that userinfo accepts.
USERINFO_SCOPE = "openid profile email"
RESOURCE = "https://api.bench.example"
OPAQUE_RESOURCE = "https://opaque.api.bench.example"


class PeerError(RuntimeError):
    """The peer could not be installed, started or driven."""


def install() -> None:
    """`npm ci` in bench/peer when node_modules is missing or older than package-lock.json."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PeerError(f"{tool} not found on PATH: the peer needs Node.js 20.19+ and npm")
    lock = PEER_DIR / "package-lock.json"
    # npm writes this file on every install: its age is the age of node_modules.
    installed = PEER_DIR / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    result = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise PeerError(f"npm ci failed in {PEER_DIR}:\n{result.stderr[-2000:]}")


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 section 4.1-4.2: a code_verifier and its S256 code_challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Peer:
    """One node-oidc-provider server: `start()`, drive it, `stop()`."""

    name = "oidc-provider"

    def __init__(
        self, port: int, workers: int, alg: str, redis_url: str = "redis://127.0.0.1:6379/0"
    ) -> None:
        if alg not in ("ES256", "RS256"):
            raise ValueError(f"alg must be ES256 or RS256, not {alg!r}")
        self.port = port
        self.workers = workers
        self.alg = alg
        self.redis_url = redis_url
        # server.js deletes every key under this prefix when it starts.
        self.prefix = f"bench:peer:{port}:"
        self.issuer = f"http://127.0.0.1:{port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.client_id = "bench-client"
        self.client_secret = "bench-secret-0123456789abcdef0123456789abcdef"
        self.redirect_uri = "http://127.0.0.1:9/callback"
        # Read from discovery by start().
        self.token_endpoint = ""
        self.authorization_endpoint = ""
        self.introspection_endpoint = ""
        self.revocation_endpoint = ""
        self.userinfo_endpoint = ""
        self.jwks_uri = ""
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        # Set once stdout says "ready" or closes; `_listening` tells which.
        self._ready = threading.Event()
        self._listening = False
        # The peer's own browser session, for userinfo_token() and refresh_tokens().
        self._cookies: dict[str, str] | None = None

    # -- process ---------------------------------------------------------------------

    def start(self) -> None:
        """Spawn node in its own process group, wait for "ready", read discovery."""
        if self._process is not None:
            raise PeerError("peer already started")
        env = {
            **os.environ,
            "NODE_ENV": "production",
            "PEER_PORT": str(self.port),
            "PEER_WORKERS": str(self.workers),
            "PEER_ALG": self.alg,
            "REDIS_URL": self.redis_url,
            "PEER_PREFIX": self.prefix,
        }
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - lives until stop()
        self._ready.clear()
        self._listening = False
        self._process = subprocess.Popen(
            ["node", "server.js"],
            cwd=PEER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,
        )
        stdout = self._process.stdout
        assert stdout is not None
        threading.Thread(target=self._drain, args=(stdout,), daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT) or not self._listening:
            log = self._stderr_tail()
            self.stop()
            raise PeerError(f"oidc-provider did not become ready on port {self.port}:\n{log}")
        self._discover()

    def _drain(self, stdout: IO[str]) -> None:
        """Read the server's stdout until it closes: "ready", then notices nobody reads."""
        for line in stdout:
            if line.strip() == "ready":
                self._listening = True
                self._ready.set()
        # The process ended: let a start() still waiting give up at once.
        self._ready.set()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:]

    def _discover(self) -> None:
        """OpenID Connect Discovery 1.0 section 4: every endpoint from the issuer's metadata."""
        metadata = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT).json()
        if metadata["issuer"] != self.issuer:
            raise PeerError(f"discovery names issuer {metadata['issuer']}, not {self.issuer}")
        self.token_endpoint = metadata["token_endpoint"]
        self.authorization_endpoint = metadata["authorization_endpoint"]
        self.introspection_endpoint = metadata["introspection_endpoint"]
        self.revocation_endpoint = metadata["revocation_endpoint"]
        self.userinfo_endpoint = metadata["userinfo_endpoint"]
        self.jwks_uri = metadata["jwks_uri"]

    def stop(self) -> None:
        """Terminate the process group (primary and workers) and wait for it."""
        process, self._process = self._process, None
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(STOP_TIMEOUT)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._cookies = None

    def pids(self) -> list[int]:
        """The node primary and its workers, for CPU accounting."""
        if self._process is None:
            return []
        primary = self._process.pid
        return [primary, *_children(primary)]

    # -- the authorization code flow ---------------------------------------------------

    def authorize_url(self, code_challenge: str, scope: str = BENCH_SCOPE) -> str:
        """The authorization request the load generator replays (RFC 6749 section 4.1.1).

        The benchmark makes one `pkce_pair()`, requests `authorize_url(challenge)` with the
        cookies of `browser_session()` (GET, no redirects followed): oidc-provider answers
        303 (not 302) to `redirect_uri?code=...&state=...&iss=...`. It then POSTs to
        `token_endpoint`, with HTTP Basic client_id:client_secret (client_secret_basic),
        the form `grant_type=authorization_code, code, redirect_uri, code_verifier`. The
        same state, nonce and verifier may serve every request; each code is new.
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

        With these cookies `authorize_url()` answers 303 with a code, no interaction.
        Each call is a new session with its own grant.
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
        """Follow the authorize and /interaction redirects to the code at redirect_uri."""
        for _ in range(10):
            response = session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
            location = response.headers.get("Location")
            if response.status_code not in (302, 303) or location is None:
                raise PeerError(f"GET {url} answered {response.status_code}: {response.text[:300]}")
            url = urljoin(url, location)
            if url.startswith(self.redirect_uri):
                return _code_from(url)
        raise PeerError("too many redirects on the way to the authorization code")

    def authorize(self, cookies: dict[str, str], challenge: str, scope: str = BENCH_SCOPE) -> str:
        """One authorization request in a signed-in session: straight to the code."""
        response = requests.get(
            self.authorize_url(challenge, scope),
            cookies=cookies,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        location = response.headers.get("Location", "")
        if response.status_code not in (302, 303) or not location.startswith(self.redirect_uri):
            raise PeerError(f"authorize answered {response.status_code} to {location[:200]!r}")
        return _code_from(location)

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
        response = requests.post(
            self.token_endpoint,
            data=form,
            auth=(self.client_id, self.client_secret),
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise PeerError(f"token endpoint answered {response.status_code}: {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def _code_flow(self, scope: str) -> dict[str, Any]:
        """A code flow in the peer's own session (signed in on first use)."""
        if self._cookies is None:
            self._cookies = self.browser_session()
        verifier, challenge = pkce_pair()
        try:
            code = self.authorize(self._cookies, challenge, scope)
        except PeerError:
            # The session's grant was revoked (a replayed refresh token): consent again.
            session = requests.Session()
            session.cookies.update(self._cookies)
            code = self._follow_to_code(session, self.authorize_url(challenge, scope))
        return self.exchange_code(code, verifier)

    # -- tokens ------------------------------------------------------------------------

    def userinfo_token(self) -> str:
        """An opaque access token without audience: the only kind userinfo accepts."""
        return str(self._code_flow(USERINFO_SCOPE)["access_token"])

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

    def introspection_token(self) -> str:
        """A client_credentials opaque access token: oidc-provider introspects no JWT."""
        form = {"grant_type": "client_credentials", "scope": "read", "resource": OPAQUE_RESOURCE}
        return str(self._token(form)["access_token"])

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


def _code_from(redirect: str) -> str:
    """RFC 6749 section 4.1.2: the code in the redirect, or the error it carries."""
    query = parse_qs(urlsplit(redirect).query)
    if "code" not in query:
        error = f"{query.get('error')} {query.get('error_description')}"
        raise PeerError(f"authorization failed: {error}")
    return query["code"][0]


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in task.read_text().split())
        except OSError:
            continue
    return sorted(set(found))


def _jwt_claims(token: str) -> dict[str, Any]:
    """The unverified payload of a compact JWT (for the smoke check's eyes only)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise PeerError(f"smoke check failed: {what}")


def smoke(peer: Peer) -> None:
    """Every path the benchmark drives, once, printing OK for each."""
    metadata = requests.get(peer.discovery_url, timeout=HTTP_TIMEOUT).json()
    _expect(metadata["code_challenge_methods_supported"] == ["S256"], "PKCE S256 only")
    print("OK discovery")

    kids = {key["kid"] for key in requests.get(peer.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]}
    _expect(kids == {"bench-es256", "bench-rs256"}, f"jwks kids {kids}")
    print("OK jwks")

    access_token = peer.access_token()
    header = json.loads(base64.urlsafe_b64decode(access_token.split(".")[0] + "=="))
    claims = _jwt_claims(access_token)
    _expect(header["typ"] == "at+jwt" and header["alg"] == peer.alg, f"JWT header {header}")
    _expect(claims["aud"] == RESOURCE and claims["exp"] - claims["iat"] == 900, f"{claims}")
    print(f"OK client_credentials ({peer.alg} JWT access token, 900 s)")

    cookies = peer.browser_session()
    verifier, challenge = pkce_pair()
    tokens = peer.exchange_code(peer.authorize(cookies, challenge), verifier)
    id_header = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[0] + "=="))
    _expect(_jwt_claims(tokens["access_token"])["aud"] == RESOURCE, "code flow JWT for the API")
    _expect(id_header["alg"] == "RS256" and "refresh_token" in tokens, f"{id_header} {tokens}")
    id_claims = _jwt_claims(tokens["id_token"])
    _expect(id_claims["exp"] - id_claims["iat"] == 900, "id_token lifetime 900 s")
    print(f"OK browser_session ({', '.join(sorted(cookies))}) + authorize -> code -> token")

    old = tokens["refresh_token"]
    rotated = peer.refresh(old)
    _expect(rotated["refresh_token"] != old, "refresh token rotated")
    _expect(_jwt_claims(rotated["access_token"])["aud"] == RESOURCE, "refreshed JWT for the API")
    try:
        peer.refresh(old)
    except PeerError as replayed:
        _expect("invalid_grant" in str(replayed), str(replayed))
    else:
        raise PeerError("smoke check failed: a rotated refresh token was accepted again")
    print("OK refresh (rotated; the old refresh token is refused)")

    # Fresh connections: the cluster primary hands them to the workers in turn.
    opaque = peer.introspection_token()
    answers = [peer.introspect(opaque) for _ in range(2 * max(peer.workers, 1))]
    _expect(all(answer.get("active") is True for answer in answers), f"{answers}")
    refused = peer.introspect(access_token)
    _expect(refused.get("error") == "unsupported_token_type", f"JWT introspection {refused}")
    [refresh_token] = peer.refresh_tokens(1)
    about = peer.introspect(refresh_token)
    _expect(about.get("active") is True, f"refresh token introspection {about}")
    _expect(about["exp"] - about["iat"] == 30 * 24 * 3600, "refresh token lifetime 30 days")
    print("OK introspection (opaque token active at every worker; JWTs unsupported_token_type)")

    userinfo = requests.get(
        peer.userinfo_endpoint,
        headers={"Authorization": f"Bearer {peer.userinfo_token()}"},
        timeout=HTTP_TIMEOUT,
    )
    _expect(userinfo.status_code == 200, f"userinfo {userinfo.status_code} {userinfo.text}")
    _expect(userinfo.json()["sub"] == "bench-user" and "email" in userinfo.json(), userinfo.text)
    jwt_refused = requests.get(
        peer.userinfo_endpoint,
        headers={"Authorization": f"Bearer {rotated['access_token']}"},
        timeout=HTTP_TIMEOUT,
    )
    _expect(jwt_refused.status_code == 401, f"userinfo took a JWT: {jwt_refused.status_code}")
    print("OK userinfo (opaque token; the API's JWT is refused)")

    _expect(len(peer.pids()) == 1 + (peer.workers if peer.workers > 1 else 0), f"{peer.pids()}")
    print(f"OK pids {peer.pids()}")


def main() -> None:
    """Install, start a peer, run the smoke check, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alg", default=os.environ.get("PEER_ALG", "ES256"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3901)
    args = parser.parse_args()
    install()
    peer = Peer(args.port, args.workers, args.alg)
    peer.start()
    try:
        smoke(peer)
    finally:
        peer.stop()


if __name__ == "__main__":
    try:
        main()
    except PeerError as error:
        sys.exit(str(error))
