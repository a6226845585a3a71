"""The benchmark's peer: panva's node-oidc-provider, set up for the same work as authserver.

`bench/peer/server.js` is the issuer (one confidential client, one user, Redis storage
shared by a node `cluster` of workers); `Peer` starts and stops it and obtains what the
load generator replays: a signed-in browser session, refresh tokens and access tokens.

    .venv/bin/python -m bench.peer [--alg ES256|RS256] [--workers 2]

run from the repository root, installs the node packages when needed, starts the peer
and checks every path the benchmark uses, printing OK for each.

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
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

import requests

from bench.client import (
    HTTP_TIMEOUT,
    READY_TIMEOUT,
    STOP_TIMEOUT,
    USERINFO_SCOPE,
    IssuerError,
    IssuerUnderTest,
    check_client_credentials,
    check_code_flow,
    check_discovery,
    check_introspection,
    check_refresh,
    check_userinfo,
    expect,
)
from bench.client import pkce_pair as pkce_pair  # bench/run.py imports it from here

PEER_DIR = Path(__file__).resolve().parent / "peer"
OPAQUE_RESOURCE = "https://opaque.api.bench.example"


class PeerError(IssuerError):
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


class Peer(IssuerUnderTest):
    """One node-oidc-provider server: `start()`, drive it, `stop()`."""

    name = "oidc-provider"
    error = PeerError
    _process: subprocess.Popen[str] | None

    def __init__(
        self, port: int, workers: int, alg: str, redis_url: str = "redis://127.0.0.1:6379/0"
    ) -> None:
        super().__init__(port, workers, alg, redis_url)
        # server.js deletes every key under this prefix when it starts.
        self.prefix = f"bench:peer:{port}:"
        self.client_id = "bench-client"
        self.client_secret = "bench-secret-0123456789abcdef0123456789abcdef"
        self._stderr: IO[str] | None = None
        # Set once stdout says "ready" or closes; `_listening` tells which.
        self._ready = threading.Event()
        self._listening = False

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

    # -- the authorization code flow ---------------------------------------------------

    def _code_in_session(self, cookies: dict[str, str], challenge: str, scope: str) -> str:
        """A code in the session `cookies`; consent again if a replay revoked its grant."""
        try:
            return self.authorize(cookies, challenge, scope)
        except PeerError:
            # A replayed refresh token revokes the session's one grant: follow to consent.
            session = requests.Session()
            session.cookies.update(cookies)
            return self._follow_to_code(session, self.authorize_url(challenge, scope))

    # -- tokens ------------------------------------------------------------------------

    def userinfo_token(self) -> str:
        """An opaque access token without audience: the only kind userinfo accepts."""
        return str(self._code_flow(USERINFO_SCOPE)["access_token"])

    def introspection_token(self) -> str:
        """A client_credentials opaque access token: oidc-provider introspects no JWT."""
        form = {"grant_type": "client_credentials", "scope": "read", "resource": OPAQUE_RESOURCE}
        return str(self._token(form)["access_token"])


def smoke(peer: Peer) -> None:
    """Every path the benchmark drives, once, printing OK for each."""
    check_discovery(peer)

    kids = {key["kid"] for key in requests.get(peer.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]}
    expect(peer, kids == {"bench-es256", "bench-rs256"}, f"jwks kids {kids}")
    print("OK jwks")

    access_token = check_client_credentials(peer)
    cookies, tokens = check_code_flow(peer)
    print(f"OK browser_session ({', '.join(sorted(cookies))}) + authorize -> code -> token")
    rotated = check_refresh(peer, tokens)

    check_introspection(peer)
    refused = peer.introspect(access_token)
    expect(peer, refused.get("error") == "unsupported_token_type", f"JWT introspection {refused}")
    print("OK introspection (opaque token active at every worker; JWTs unsupported_token_type)")

    claims = check_userinfo(peer)
    expect(peer, claims["sub"] == "bench-user" and "email" in claims, f"{claims}")
    jwt_refused = requests.get(
        peer.userinfo_endpoint,
        headers={"Authorization": f"Bearer {rotated['access_token']}"},
        timeout=HTTP_TIMEOUT,
    )
    expect(peer, jwt_refused.status_code == 401, f"userinfo took a JWT: {jwt_refused.status_code}")
    print("OK userinfo (opaque token; the API's JWT is refused)")

    pids = peer.pids()
    expect(peer, len(pids) == 1 + (peer.workers if peer.workers > 1 else 0), f"{pids}")
    print(f"OK pids {pids}")


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
