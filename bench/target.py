"""The benchmark's target: authserver itself, set up for the same work as the peer.

`Authserver` mirrors `bench/peer.py`'s `Peer`: it migrates a throwaway PostgreSQL
database, creates one person and one confidential client with the CLI, serves `wsgi:app`
with granian (or gunicorn) in its own process group, and obtains what the load generator
replays: a signed-in browser session, refresh tokens and access tokens.

    .venv/bin/python -m bench.target [--alg ES256|RS256] [--server granian|gunicorn]

run from the repository root, starts the target with each server and algorithm (or the
ones named), checks every path the benchmark uses, printing OK for each, and stops it.

How it is configured, and why:

- Rate limits are off (AUTHSERVER_RATELIMIT_ENABLED=false): the peer has none, and the
  load generator signs in and calls the token endpoint far beyond any page or API limit.
  The per-account lockout stays on; it counts wrong passwords only.
- AUTHSERVER_ENV stays at its default (development): production refuses an http issuer,
  and the benchmark serves on http://127.0.0.1. The environment changes nothing on the
  request path; production only forbids the file mail outbox, which the bench never uses.
- The database URL is a plain postgresql:// one, as the README and the Dockerfile tell a
  deployment to write it: SQLAlchemy then uses psycopg 3.
- Each worker serves one request at a time (granian `--blocking-threads 1`, gunicorn's
  sync worker), as each node worker of the peer runs one JavaScript thread. gunicorn's
  sync worker closes the connection after every response (no keep-alive).

Where authserver differs from oidc-provider, and what the benchmark must know:

- The authorization endpoint answers 302 (oidc-provider: 303).
- Every access token is an RFC 9068 JWT, and both introspection and userinfo accept it:
  `introspection_token()` and `userinfo_token()` are JWTs too.
- Each code flow is its own grant: replaying a rotated refresh token revokes that grant
  only, so the tokens of `refresh_tokens()` are independent of each other.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import psycopg2
import requests
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVERS = ("granian", "gunicorn")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 10.0
# The scope of the benchmark's authorization requests: OpenID, a refresh token, the API.
BENCH_SCOPE = "openid profile email offline_access read"
# OpenID scopes only, as the peer's userinfo token asks (ours is a JWT all the same).
USERINFO_SCOPE = "openid profile email"
CLIENT_SCOPE = "openid profile email offline_access read write"
RESOURCE = "https://api.bench.example"
EMAIL = "bench@example.com"
PASSWORD = "bench password 0123456789 correct horse"
# Signs cookies and encrypts the signing keys of a throwaway database; never a real secret.
SECRET_KEY = "bench-authserver-secret-key-" + "k" * 36
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]*)"')
FORM_RE = re.compile(r'<form\b[^>]*\bmethod="post"[^>]*>.*?</form>', re.DOTALL | re.IGNORECASE)
ACTION_RE = re.compile(r'\baction="([^"]*)"')
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class AuthserverError(RuntimeError):
    """The target could not be set up, started or driven."""


def pkce_pair() -> tuple[str, str]:
    """RFC 7636 section 4.1-4.2: a code_verifier and its S256 code_challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class Authserver:
    """One authserver (a WSGI server and its workers) on its own database: `start()`, `stop()`."""

    name = "authserver"

    def __init__(
        self,
        port: int,
        workers: int,
        alg: str,
        server: str = "granian",
        database_url: str | None = None,
        seed_rows: int = 0,
        redis_url: str = "redis://127.0.0.1:6379/0",
    ) -> None:
        if alg not in ("ES256", "RS256"):
            raise ValueError(f"alg must be ES256 or RS256, not {alg!r}")
        if server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
        self.port = port
        self.workers = workers
        self.alg = alg
        self.server = server
        self.database_url = database_url
        self.seed_rows = seed_rows
        self.redis_url = redis_url
        self.issuer = f"http://127.0.0.1:{port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.email = EMAIL
        self.password = PASSWORD
        self.redirect_uri = "http://127.0.0.1:9/callback"
        # Read from `clients create --json` by start().
        self.client_id = ""
        self.client_secret = ""
        # Read from discovery by start().
        self.token_endpoint = ""
        self.authorization_endpoint = ""
        self.introspection_endpoint = ""
        self.revocation_endpoint = ""
        self.userinfo_endpoint = ""
        self.jwks_uri = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._instance: tempfile.TemporaryDirectory[str] | None = None
        # The database start() created, dropped again by stop().
        self._created_database: str | None = None
        # The target's own browser session, for userinfo_token() and refresh_tokens().
        self._cookies: dict[str, str] | None = None

    # -- process ---------------------------------------------------------------------

    def start(self) -> None:
        """Create and migrate the database, add the person and client, serve, read discovery."""
        if self._process is not None:
            raise AuthserverError("authserver already started")
        try:
            self._prepare()
            self._spawn()
            self._wait_ready()
            self._discover()
        except BaseException:
            self.stop()
            raise

    def env(self) -> dict[str, str]:
        """The environment of the CLI and the server: only our AUTHSERVER_* settings."""
        assert self._instance is not None and self.database_url is not None
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
        return {
            **inherited,
            "AUTHSERVER_DATABASE_URL": self.database_url,
            "AUTHSERVER_SECRET_KEY": SECRET_KEY,
            "AUTHSERVER_INSTANCE_PATH": self._instance.name,
            "AUTHSERVER_ISSUER": self.issuer,
            "AUTHSERVER_ACCESS_TOKEN_ALG": self.alg,
            "AUTHSERVER_DEFAULT_AUDIENCE": RESOURCE,
            "AUTHSERVER_REDIS_URL": self.redis_url,
            "AUTHSERVER_RATELIMIT_ENABLED": "false",
        }

    def _prepare(self) -> None:
        """A migrated database with signing keys, the bench person and client, seeded rows."""
        self._instance = tempfile.TemporaryDirectory(prefix="bench-authserver-")
        if self.database_url is None:
            name = f"bench_{secrets.token_hex(6)}"
            _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            self._created_database = name
            self.database_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        self._cli("db", "upgrade")
        self._cli("keys", "ensure")
        self.create_user(self.email, self.password, name="Bench User")
        client = json.loads(
            self._cli(
                "clients",
                "create",
                "--json",
                "--name",
                "bench",
                "--grant-type",
                "authorization_code",
                "--grant-type",
                "refresh_token",
                "--grant-type",
                "client_credentials",
                "--scope",
                CLIENT_SCOPE,
                "--redirect-uri",
                self.redirect_uri,
                "--auth-method",
                "client_secret_basic",
                "--resource",
                RESOURCE,
            )
        )
        self.client_id, self.client_secret = client["client_id"], client["client_secret"]
        if self.seed_rows > 0:
            # Imported here: bench/scale.py loads the whole application.
            from bench.scale import seed

            seed(self.database_url, self.seed_rows, client_id=self.client_id)

    def create_user(self, email: str, password: str, name: str = "Bench User") -> None:
        """`authserver users create`: a verified person (argon2id hash at the config's cost)."""
        self._cli("users", "create", email, "--password-stdin", "--name", name, stdin=password)

    def _cli(self, *args: str, stdin: str | None = None) -> str:
        """Run `authserver <args>` against this target's database; its stdout."""
        done = subprocess.run(
            [str(BIN / "authserver"), *args],
            cwd=ROOT,
            env=self.env(),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise AuthserverError(f"authserver {args[0]} {args[1]} failed:\n{done.stderr[-2000:]}")
        return done.stdout

    def command(self) -> list[str]:
        """The server's command line: `workers` processes, one request at a time each."""
        bind = ["--host", "127.0.0.1", "--port", str(self.port)]
        if self.server == "granian":
            return [
                str(BIN / "granian"),
                *("--interface", "wsgi", "--workers", str(self.workers)),
                *("--blocking-threads", os.environ.get("BENCH_BLOCKING_THREADS", "1")),
                *("--no-ws", "--log-level", "warning"),
                *os.environ.get("BENCH_GRANIAN_ARGS", "").split(),
                *bind,
                "wsgi:app",
            ]
        return [
            str(BIN / "gunicorn"),
            *("--workers", str(self.workers), "--bind", f"127.0.0.1:{self.port}"),
            *("--log-level", "warning"),
            "wsgi:app",
        ]

    def _spawn(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives until stop()
        self._process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        """Poll discovery until it answers 200, the server exits, or READY_TIMEOUT passes."""
        assert self._process is not None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                if requests.get(self.discovery_url, timeout=1.0).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AuthserverError(
            f"{self.server} did not serve discovery on port {self.port}:\n{self._stderr_tail()}"
        )

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-2000:].decode(errors="replace")

    def _discover(self) -> None:
        """OpenID Connect Discovery 1.0 section 4: every endpoint from the issuer's metadata."""
        metadata = requests.get(self.discovery_url, timeout=HTTP_TIMEOUT).json()
        if metadata["issuer"] != self.issuer:
            raise AuthserverError(f"discovery names issuer {metadata['issuer']}, not {self.issuer}")
        self.token_endpoint = metadata["token_endpoint"]
        self.authorization_endpoint = metadata["authorization_endpoint"]
        self.introspection_endpoint = metadata["introspection_endpoint"]
        self.revocation_endpoint = metadata["revocation_endpoint"]
        self.userinfo_endpoint = metadata["userinfo_endpoint"]
        self.jwks_uri = metadata["jwks_uri"]

    def stop(self) -> None:
        """Terminate the process group, wait until none of it is left, drop the database."""
        process, self._process = self._process, None
        if process is not None:
            _end_group(process)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._created_database is not None:
            name, self._created_database = self._created_database, None
            _admin(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = {} AND pid <> pg_backend_pid()"
                ).format(sql.Literal(name))
            )
            _admin(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
            self.database_url = None
        if self._instance is not None:
            self._instance.cleanup()
            self._instance = None
        self._cookies = None

    def pids(self) -> list[int]:
        """The server's master and all its descendants (the workers), for CPU accounting."""
        if self._process is None:
            return []
        master = self._process.pid
        found = [master]
        for pid in found:
            found.extend(child for child in _children(pid) if child not in found)
        return found

    def worker_pids(self) -> list[int]:
        """The worker processes only: the master's direct children."""
        if self._process is None:
            return []
        return _children(self._process.pid)

    # -- the authorization code flow ---------------------------------------------------

    def authorize_url(self, code_challenge: str, scope: str = BENCH_SCOPE) -> str:
        """The authorization request the load generator replays (RFC 6749 section 4.1.1).

        The benchmark makes one `pkce_pair()`, requests `authorize_url(challenge)` with the
        cookies of `browser_session()` (GET, no redirects followed): authserver answers
        302 (oidc-provider: 303) to `redirect_uri?code=...&state=...&iss=...`. It then
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
        """Sign in and consent once, as a browser would; the cookies it keeps for authorize.

        With these cookies `authorize_url()` answers 302 with a code, no interaction: the
        session is signed in and the consent to BENCH_SCOPE is remembered. Each call is a
        new session.
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
        """Follow redirects, sign in and allow on the way, to the code at redirect_uri."""
        response = session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
        for _ in range(10):
            location = response.headers.get("Location")
            if response.status_code in (302, 303) and location is not None:
                target = urljoin(response.url, location)
                if target.startswith(self.redirect_uri):
                    return _code_from(target)
                response = session.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
            elif response.status_code == 200 and (form := post_form(response.text)):
                action, fields = form
                if "password" in fields:
                    fields.update(email=self.email, password=self.password)
                elif "decision" in fields:
                    fields["decision"] = "allow"
                else:
                    raise AuthserverError(f"unexpected form on {response.url}: {sorted(fields)}")
                response = session.post(
                    urljoin(response.url, action),
                    data=fields,
                    allow_redirects=False,
                    timeout=HTTP_TIMEOUT,
                )
            else:
                raise AuthserverError(
                    f"{response.request.method} {response.url} answered "
                    f"{response.status_code}: {response.text[:300]}"
                )
        raise AuthserverError("too many steps on the way to the authorization code")

    def authorize(self, cookies: dict[str, str], challenge: str, scope: str = BENCH_SCOPE) -> str:
        """One authorization request in a signed-in session: straight to the code."""
        response = requests.get(
            self.authorize_url(challenge, scope),
            cookies=cookies,
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
        location = response.headers.get("Location", "")
        if response.status_code != 302 or not location.startswith(self.redirect_uri):
            raise AuthserverError(
                f"authorize answered {response.status_code} to {location[:200]!r}"
            )
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
            raise AuthserverError(
                f"token endpoint answered {response.status_code}: {response.text}"
            )
        body: dict[str, Any] = response.json()
        return body

    def _code_flow(self, scope: str) -> dict[str, Any]:
        """A code flow in the target's own session (signed in on first use)."""
        if self._cookies is None:
            self._cookies = self.browser_session()
        verifier, challenge = pkce_pair()
        return self.exchange_code(self.authorize(self._cookies, challenge, scope), verifier)

    # -- tokens ------------------------------------------------------------------------

    def userinfo_token(self) -> str:
        """An RFC 9068 JWT access token from a code flow for OpenID scopes; userinfo takes it."""
        token = str(self._code_flow(USERINFO_SCOPE)["access_token"])
        response = requests.get(
            self.userinfo_endpoint,
            headers={"Authorization": f"Bearer {token}"},
            timeout=HTTP_TIMEOUT,
        )
        if response.status_code != 200:
            raise AuthserverError(f"userinfo answered {response.status_code}: {response.text}")
        return token

    def refresh_tokens(self, n: int) -> list[str]:
        """`n` refresh tokens from `n` code flows, each its own grant, each usable once."""
        self._code_flow(BENCH_SCOPE)  # signs in before the threads share the cookies
        with ThreadPoolExecutor(max_workers=8) as pool:
            flows = pool.map(lambda _: self._code_flow(BENCH_SCOPE), range(n))
            return [str(tokens["refresh_token"]) for tokens in flows]

    def access_token(self) -> str:
        """A client_credentials JWT access token (RFC 9068) for the API."""
        form = {"grant_type": "client_credentials", "scope": "read"}
        return str(self._token(form)["access_token"])

    def introspection_token(self) -> str:
        """A client_credentials JWT access token, checked to introspect as active."""
        token = self.access_token()
        answer = self.introspect(token)
        if answer.get("active") is not True:
            raise AuthserverError(f"introspection of a fresh access token: {answer}")
        return token

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


def _admin(statement: sql.Composable) -> None:
    """One statement on the maintenance database, outside a transaction (CREATE DATABASE)."""
    conn = psycopg2.connect(ADMIN_URL)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def _database_exists(name: str) -> bool:
    conn = psycopg2.connect(ADMIN_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL what is left after STOP_TIMEOUT; wait until empty."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        # Reap the master: a zombie still counts as a member of its group.
        process.poll()
        try:
            os.killpg(group, signal.SIGKILL if time.monotonic() > deadline else 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    process.wait()


def post_form(page: str) -> tuple[str, dict[str, str]] | None:
    """The first POST form of a page: its action and fields (hidden ones filled, others empty)."""
    match = FORM_RE.search(page)
    if match is None:
        return None
    form = match.group(0)
    action = ACTION_RE.search(form)
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_RE.findall(form)}
    for name in re.findall(r'<(?:input|button)\b[^>]*\bname="([^"]+)"', form):
        fields.setdefault(html.unescape(name), "")
    return html.unescape(action.group(1)) if action else "", fields


def _code_from(redirect: str) -> str:
    """RFC 6749 section 4.1.2: the code in the redirect, or the error it carries."""
    query = parse_qs(urlsplit(redirect).query)
    if "code" not in query:
        error = f"{query.get('error')} {query.get('error_description')}"
        raise AuthserverError(f"authorization failed: {error}")
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


def _jwt_part(token: str, index: int) -> dict[str, Any]:
    """One unverified part of a compact JWT, 0 the header, 1 the payload (for the eyes only)."""
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise AuthserverError(f"smoke check failed: {what}")


def wrk_requests_per_second(url: str, seconds: int = 5) -> float:
    """`wrk -t2 -c16` against one URL: its Requests/sec."""
    done = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    _expect(match is not None and "Non-2xx" not in done.stdout, f"wrk said:\n{done.stdout}")
    assert match is not None
    return float(match.group(1))


def smoke(target: Authserver) -> None:
    """Every path the benchmark drives, once, printing OK for each."""
    metadata = requests.get(target.discovery_url, timeout=HTTP_TIMEOUT).json()
    _expect(metadata["code_challenge_methods_supported"] == ["S256"], "PKCE S256 only")
    print("OK discovery")

    jwks = requests.get(target.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]
    algs = {key.get("alg") for key in jwks}
    _expect({"ES256", "RS256"} <= algs, f"jwks algs {algs}")
    print(f"OK jwks ({len(jwks)} keys)")

    access_token = target.access_token()
    header, claims = _jwt_part(access_token, 0), _jwt_part(access_token, 1)
    _expect(header["typ"] == "at+jwt" and header["alg"] == target.alg, f"JWT header {header}")
    _expect(claims["aud"] == RESOURCE and claims["exp"] - claims["iat"] == 900, f"{claims}")
    print(f"OK client_credentials ({target.alg} JWT access token, 900 s)")

    cookies = target.browser_session()
    verifier, challenge = pkce_pair()
    tokens = target.exchange_code(target.authorize(cookies, challenge), verifier)
    id_header, id_claims = _jwt_part(tokens["id_token"], 0), _jwt_part(tokens["id_token"], 1)
    _expect(_jwt_part(tokens["access_token"], 1)["aud"] == RESOURCE, "code flow JWT for the API")
    _expect(id_header["alg"] == "RS256" and "refresh_token" in tokens, f"{id_header} {tokens}")
    _expect(id_claims["exp"] - id_claims["iat"] == 900, "id_token lifetime 900 s")
    print(f"OK browser_session ({', '.join(sorted(cookies))}) + authorize -> 302 code -> token")

    old = tokens["refresh_token"]
    rotated = target.refresh(old)
    _expect(rotated["refresh_token"] != old, "refresh token rotated")
    _expect(_jwt_part(rotated["access_token"], 1)["aud"] == RESOURCE, "refreshed JWT for the API")
    try:
        target.refresh(old)
    except AuthserverError as replayed:
        _expect("invalid_grant" in str(replayed), str(replayed))
    else:
        raise AuthserverError("smoke check failed: a rotated refresh token was accepted again")
    print("OK refresh (rotated; the old refresh token is refused)")

    # Fresh connections, so that more than one worker answers.
    token = target.introspection_token()
    answers = [target.introspect(token) for _ in range(2 * max(target.workers, 1))]
    _expect(all(answer.get("active") is True for answer in answers), f"{answers}")
    [refresh_token] = target.refresh_tokens(1)
    about = target.introspect(refresh_token)
    _expect(about.get("active") is True, f"refresh token introspection {about}")
    _expect(about["exp"] - about["iat"] == 30 * 24 * 3600, "refresh token lifetime 30 days")
    print("OK introspection (JWT access token and refresh token active)")

    userinfo = requests.get(
        target.userinfo_endpoint,
        headers={"Authorization": f"Bearer {target.userinfo_token()}"},
        timeout=HTTP_TIMEOUT,
    )
    _expect(userinfo.status_code == 200, f"userinfo {userinfo.status_code} {userinfo.text}")
    _expect("sub" in userinfo.json() and userinfo.json().get("email") == EMAIL, userinfo.text)
    print("OK userinfo (JWT access token)")

    workers = target.worker_pids()
    _expect(len(workers) == target.workers, f"workers {workers} of {target.pids()}")
    print(f"OK pids {target.pids()} (workers {workers})")

    print(f"OK wrk -t2 -c16 -d5s JWKS: {wrk_requests_per_second(target.jwks_uri):,.0f} req/s")


def main() -> None:
    """Start the target with each server and algorithm, run the smoke check, stop."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--alg", choices=("ES256", "RS256"), help="default: both")
    parser.add_argument("--server", choices=SERVERS, help="default: both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=3902)
    parser.add_argument("--seed-rows", type=int, default=0)
    args = parser.parse_args()
    for server in [args.server] if args.server else SERVERS:
        for alg in [args.alg] if args.alg else ("ES256", "RS256"):
            print(f"== {server}, {alg}, {args.workers} workers")
            target = Authserver(args.port, args.workers, alg, server, seed_rows=args.seed_rows)
            target.start()
            try:
                smoke(target)
            finally:
                pids, database = target.pids(), target._created_database
                target.stop()
            _expect(not any(Path(f"/proc/{pid}").exists() for pid in pids), f"left {pids}")
            _expect(database is None or not _database_exists(database), f"{database} left")
            print("OK stopped (no process left, database dropped)")


if __name__ == "__main__":
    try:
        main()
    except AuthserverError as error:
        sys.exit(str(error))
