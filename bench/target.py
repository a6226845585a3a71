"""The benchmark's target: authserver itself, set up for the same work as the peer.

`Authserver` mirrors `bench/peer.py`'s `Peer`: it migrates a throwaway PostgreSQL
database, creates one person and one confidential client with the CLI, serves `wsgi:app`
with granian (or gunicorn) in its own process group, and obtains what the load generator
replays: a signed-in browser session, refresh tokens and access tokens.

    .venv/bin/python -m bench.target [--alg ES256|RS256] [--server granian|gunicorn]

run from the repository root, starts the target with each server and algorithm (or the
ones named), checks every path the benchmark uses, printing OK for each, and stops it.

How it is configured, and why:

- As in production: rate limiting on, its counters in Redis, and the audit log on. The
  limits are raised (BENCH_RATE_LIMIT) so that the load generator, one client from one
  address far beyond any real client's rate, is counted on every request but never
  refused: the cost of counting stays in. Counting goes through leases
  (security/leases.py), so its cost depends on how near a client is to its limit: far
  below it, as here, a few microseconds a request; at 500 of a 600/minute budget about
  7 µs; at the limit one Redis round trip each (bench/RESULTS.md). The per-account
  lockout counts wrong passwords only.
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
import contextlib
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
from pathlib import Path
from typing import IO
from urllib.parse import urljoin

import psycopg2
import requests
from psycopg2 import sql

from bench.client import (
    HTTP_TIMEOUT,
    READY_TIMEOUT,
    RESOURCE,
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

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVERS = ("granian", "gunicorn")
# Never reached: one bench client does ~10,000 requests/s. Every request is counted, through
# leases (security/leases.py): far below this limit a process asks Redis about once a window.
BENCH_RATE_LIMIT = "100000000/minute"
CLIENT_SCOPE = "openid profile email offline_access read write"
EMAIL = "bench@example.com"
PASSWORD = "bench password 0123456789 correct horse"
# Signs cookies and encrypts the signing keys of a throwaway database; never a real secret.
SECRET_KEY = "bench-authserver-secret-key-" + "k" * 36
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]*)"')
FORM_RE = re.compile(r'<form\b[^>]*\bmethod="post"[^>]*>.*?</form>', re.DOTALL | re.IGNORECASE)
ACTION_RE = re.compile(r'\baction="([^"]*)"')
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
# A ticked, enabled checkbox (a disabled one is not sent by browsers).
CHECKED_RE = re.compile(
    r'<input type="checkbox" name="([^"]+)" value="([^"]*)" checked(?! disabled)[^>]*>'
)


class AuthserverError(IssuerError):
    """The target could not be set up, started or driven."""


class Authserver(IssuerUnderTest):
    """One authserver (a WSGI server and its workers) on its own database: `start()`, `stop()`."""

    name = "authserver"
    error = AuthserverError
    authorize_statuses = (302,)
    _process: subprocess.Popen[bytes] | None

    def __init__(
        self,
        port: int,
        workers: int,
        alg: str,
        server: str = "granian",
        database_url: str | None = None,
        seed_rows: int = 0,
        redis_url: str = "redis://127.0.0.1:6379/0",
        seed_expired: bool = False,
    ) -> None:
        super().__init__(port, workers, alg, redis_url)
        if server not in SERVERS:
            raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
        self.server = server
        self.database_url = database_url
        self.seed_rows = seed_rows
        # Seeded rows all past their time (bench/scale.py's seed(expired=True)).
        self.seed_expired = seed_expired
        self.email = EMAIL
        self.password = PASSWORD
        self._stderr: IO[bytes] | None = None
        self._instance: tempfile.TemporaryDirectory[str] | None = None
        # The database start() created, dropped again by stop().
        self._created_database: str | None = None

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
            # As the image runs it (README, Production): sign-ins' argon2 buffer in huge pages.
            "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1",
            "AUTHSERVER_RATELIMIT_ENABLED": "true",
            "AUTHSERVER_RATELIMIT_API": BENCH_RATE_LIMIT,
            "AUTHSERVER_RATELIMIT_PAGES": BENCH_RATE_LIMIT,
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

            seed(
                self.database_url,
                self.seed_rows,
                client_id=self.client_id,
                expired=self.seed_expired,
            )

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

    # -- the authorization code flow ---------------------------------------------------

    def _interact(
        self, session: requests.Session, response: requests.Response
    ) -> requests.Response:
        """Sign in and allow, as a browser would, on the pages between authorize and the code."""
        form = post_form(response.text) if response.status_code == 200 else None
        if form is None:
            return super()._interact(session, response)
        action, fields, ticked = form
        if "password" in fields:
            fields.update(email=self.email, password=self.password)
        elif "decision" in fields:
            fields["decision"] = "allow"
        else:
            raise AuthserverError(f"unexpected form on {response.url}: {sorted(fields)}")
        data = [*fields.items(), *ticked]
        return session.post(
            urljoin(response.url, action), data=data, allow_redirects=False, timeout=HTTP_TIMEOUT
        )

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

    def introspection_token(self) -> str:
        """A client_credentials JWT access token, checked to introspect as active."""
        token = self.access_token()
        answer = self.introspect(token)
        if answer.get("active") is not True:
            raise AuthserverError(f"introspection of a fresh access token: {answer}")
        return token


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


def post_form(page: str) -> tuple[str, dict[str, str], list[tuple[str, str]]] | None:
    """The first POST form of a page: its action, its fields (hidden ones filled, others
    empty) and its ticked checkboxes (the consent page's scopes), as a browser sends them."""
    match = FORM_RE.search(page)
    if match is None:
        return None
    form = match.group(0)
    action = ACTION_RE.search(form)
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_RE.findall(form)}
    ticked = [
        (html.unescape(name), html.unescape(value)) for name, value in CHECKED_RE.findall(form)
    ]
    for name in re.findall(r'<(?:input|button)\b[^>]*\bname="([^"]+)"', form):
        if not any(name == box for box, _ in ticked):
            fields.setdefault(html.unescape(name), "")
    return html.unescape(action.group(1)) if action else "", fields, ticked


def wrk_requests_per_second(url: str, seconds: int = 5) -> float:
    """`wrk -t2 -c16` against one URL: its Requests/sec."""
    done = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Requests/sec:\s*([\d.]+)", done.stdout)
    if match is None or "Non-2xx" in done.stdout:
        raise AuthserverError(f"smoke check failed: wrk said:\n{done.stdout}")
    return float(match.group(1))


def smoke(target: Authserver) -> None:
    """Every path the benchmark drives, once, printing OK for each."""
    check_discovery(target)

    jwks = requests.get(target.jwks_uri, timeout=HTTP_TIMEOUT).json()["keys"]
    algs = {key.get("alg") for key in jwks}
    expect(target, {"ES256", "RS256"} <= algs, f"jwks algs {algs}")
    print(f"OK jwks ({len(jwks)} keys)")

    check_client_credentials(target)
    cookies, tokens = check_code_flow(target)
    print(f"OK browser_session ({', '.join(sorted(cookies))}) + authorize -> 302 code -> token")
    check_refresh(target, tokens)
    check_introspection(target)
    print("OK introspection (JWT access token and refresh token active)")

    claims = check_userinfo(target)
    expect(target, "sub" in claims and claims.get("email") == EMAIL, f"{claims}")
    print("OK userinfo (JWT access token)")

    workers = target.worker_pids()
    expect(target, len(workers) == target.workers, f"workers {workers} of {target.pids()}")
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
            expect(target, not any(Path(f"/proc/{pid}").exists() for pid in pids), f"left {pids}")
            expect(target, database is None or not _database_exists(database), f"{database} left")
            print("OK stopped (no process left, database dropped)")


if __name__ == "__main__":
    try:
        main()
    except AuthserverError as error:
        sys.exit(str(error))
