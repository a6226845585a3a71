"""Where a request's CPU goes, and how many round trips it makes, on both sides.

For the hot workloads this prints, per operation:

- authserver, called in process as a WSGI server calls it (a prebuilt environ, the
  app's own `__call__`), on its bench target's PostgreSQL database and a Redis of its
  own: CPU per request (time.process_time, no profiler), SQL statements and
  transactions (SQLAlchemy engine events), Redis commands (the private Redis's
  `INFO commandstats`), and the share of CPU by component (cProfile with a CPU clock:
  self time per function, grouped by the package it is in);
- the peer (oidc-provider on a private Redis), under wrk: CPU per operation of its
  processes and Redis commands per operation.

    .venv/bin/python -m bench.breakdown [--requests 2000] [--workloads ...]

Run it on a quiet machine; the shares are cProfile's, whose overhead weighs more on
many small calls, so read them as proportions, next to the unprofiled CPU figure.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import event

from bench import run as bench_run
from bench.peer import Peer
from bench.target import Authserver

PRIVATE_REDIS_PORT = 6391
OURS_PORT, PEER_PORT = 5721, 5722
# Self time by where the function lives: the first matching fragment of its file name.
COMPONENTS = (
    ("socket calls to PostgreSQL and Redis", ("'recv'", "'sendall'", "'send'", "poll", "wait")),
    ("rate limiting (ours + limits + redis-py)", ("security/ratelimit", "security/leases")),
    ("rate limiting (ours + limits + redis-py)", ("/limits/", "/redis/")),
    ("database (SQLAlchemy + psycopg)", ("/sqlalchemy/", "/psycopg")),
    ("signatures and hashes", ("cryptography", "hashlib", "sha256", "argon2")),
    ("Flask + Werkzeug request machinery", ("/flask/", "/werkzeug/", "/flask_wtf/")),
    ("Authlib", ("/authlib/",)),
    ("JSON", ("/json/", "_json")),
    ("authserver's own code", ("/authserver/",)),
)
WORKLOADS = ("client_credentials", "introspection", "userinfo", "refresh")


@contextmanager
def private_redis() -> Iterator[str]:
    """A throwaway Redis on its own port: its command counts are ours alone."""
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            *("redis-server", "--port", str(PRIVATE_REDIS_PORT), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--dir", folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{PRIVATE_REDIS_PORT}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def redis_commands(url: str) -> dict[str, int]:
    """Commands the Redis at `url` has run so far, by name (INFO commandstats, without INFO).

    Commands a script runs are counted too, beside the script's own EVALSHA.
    """
    stats = redis.Redis.from_url(url).info("commandstats")
    return {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if name != "cmdstat_info"
    }


def per_operation(before: dict[str, int], after: dict[str, int], operations: int) -> str:
    """`evalsha 1.00, get 2.00`: the commands run per operation, most frequent first."""
    counts = {name: (after[name] - before.get(name, 0)) / max(operations, 1) for name in after}
    found = sorted(((n, c) for n, c in counts.items() if c >= 0.005), key=lambda x: -x[1])
    return ", ".join(f"{name} {count:.2f}" for name, count in found) or "none"


def component(filename: str, function: str) -> str:
    """The component a profiled function belongs to; built-ins (file "~") by their name."""
    where = function if filename == "~" else filename
    for name, fragments in COMPONENTS:
        if any(fragment in where for fragment in fragments):
            return name
    return "Python built-ins and the rest"


def shares(profile: cProfile.Profile) -> dict[str, float]:
    """Self time grouped by component, as shares of the total."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    totals: dict[str, float] = {}
    for (filename, _, function), (_, _, self_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        name = component(filename, function)
        totals[name] = totals.get(name, 0.0) + self_time
    whole = sum(totals.values()) or 1.0
    return {name: value / whole for name, value in sorted(totals.items(), key=lambda x: -x[1])}


class InProcess:
    """authserver's app in this process, on the target's database and a private Redis."""

    def __init__(self, target: Authserver, redis_url: str) -> None:
        os.environ.update(target.env())
        os.environ["AUTHSERVER_REDIS_URL"] = redis_url
        from authserver import create_app  # after the environment is the target's
        from authserver.extensions import db

        self.app = create_app(migrations=False)
        self.target = target
        self.counts = {"sql": 0, "transactions": 0}
        with self.app.app_context():
            engine = db.engine
        event.listen(engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.listen(engine, name, self._transaction)
        self.basic = base64.b64encode(f"{target.client_id}:{target.client_secret}".encode())

    def _statement(self, *_: Any, **__: Any) -> None:
        self.counts["sql"] += 1

    def _transaction(self, *_: Any) -> None:
        self.counts["transactions"] += 1

    def environ(self, method: str, path: str, body: str = "", **headers: str) -> dict[str, Any]:
        """What a WSGI server hands the app for this request."""
        data = body.encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.target.port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": f"127.0.0.1:{self.target.port}",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(data)),
        }
        if data:
            environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
        return environ

    def call(self, environ: dict[str, Any]) -> bytes:
        """One request; its body, after checking it answered 200."""
        statuses: list[str] = []
        body = b"".join(self.app(environ, lambda status, _h, _e=None: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"{environ['PATH_INFO']} answered {statuses[0]}: {body[:300]!r}")
        return body


def requests_for(ours: InProcess, workload: str, n: int) -> Callable[[], dict[str, Any]]:
    """A factory of environs for `workload` (refresh: one rotated token after another)."""
    basic = "Basic " + ours.basic.decode()
    target = ours.target
    if workload == "client_credentials":
        body = "grant_type=client_credentials&scope=read"
        return lambda: ours.environ("POST", "/oauth2/token", body, AUTHORIZATION=basic)
    if workload == "introspection":
        body = f"token={target.introspection_token()}"
        return lambda: ours.environ("POST", "/oauth2/introspect", body, AUTHORIZATION=basic)
    if workload == "userinfo":
        bearer = f"Bearer {target.userinfo_token()}"
        return lambda: ours.environ("GET", "/userinfo", AUTHORIZATION=bearer)
    tokens = iter(target.refresh_tokens(n + 1))
    return lambda: ours.environ(
        "POST",
        "/oauth2/token",
        f"grant_type=refresh_token&refresh_token={next(tokens)}",
        AUTHORIZATION=basic,
    )


def measure_ours(ours: InProcess, workload: str, n: int, redis_url: str) -> dict[str, Any]:
    """CPU per request without a profiler, round trips, then the profiled shares."""
    make = requests_for(ours, workload, 2 * n + 2)
    ours.call(make())  # warm: caches filled as in steady state
    environs = [make() for _ in range(n)]
    ours.counts.update(sql=0, transactions=0)
    before_redis = redis_commands(redis_url)
    started = time.process_time()
    for environ in environs:
        ours.call(environ)
    cpu_ms = (time.process_time() - started) * 1000 / n
    redis_per_op = per_operation(before_redis, redis_commands(redis_url), n)
    sql, transactions = ours.counts["sql"] / n, ours.counts["transactions"] / n
    profiled = [make() for _ in range(n)]
    profile = cProfile.Profile(time.process_time)  # CPU, not the time spent waiting
    profile.enable()
    for environ in profiled:
        ours.call(environ)
    profile.disable()
    return {
        "cpu_ms": cpu_ms,
        "sql": sql,
        "transactions": transactions,
        "redis": redis_per_op,
        "shares": shares(profile),
    }


def measure_peer(peer: Peer, workload: str, redis_url: str, scratch: Path) -> dict[str, Any]:
    """The peer under wrk for 3 s: CPU per operation and Redis commands per operation."""
    env = bench_run.WORKLOADS[workload].env(peer, scratch)
    before = redis_commands(redis_url)
    run = bench_run.run_wrk(peer, env, 3, 16, 2)
    return {
        "cpu_ms": run.server_cpu_ms,
        "redis": per_operation(before, redis_commands(redis_url), run.ok),
    }


def report(workload: str, ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    lines = [
        f"#### {workload}",
        "",
        f"- authserver: {ours['cpu_ms']:.3f} ms CPU per request in process;"
        f" {ours['sql']:.1f} SQL statements and {ours['transactions']:.1f} transaction events"
        f" (SQLAlchemy's begin, commit, rollback); Redis: {ours['redis']}",
        f"- oidc-provider: {theirs['cpu_ms']:.3f} ms CPU per operation under wrk;"
        f" Redis: {theirs['redis']}",
        "",
        "| authserver component | share of CPU (cProfile self time) |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {share * 100:.0f}% |" for name, share in ours["shares"].items()]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    args = parser.parse_args(argv)
    out: list[str] = []
    with private_redis() as redis_url, tempfile.TemporaryDirectory() as scratch:
        target = Authserver(OURS_PORT, 1, "ES256", redis_url=redis_url)
        peer = Peer(PEER_PORT, 1, "ES256", redis_url=redis_url)
        with bench_run.running(target), bench_run.running(peer):
            ours = InProcess(target, redis_url)
            for workload in args.workloads:
                found = measure_ours(ours, workload, args.requests, redis_url)
                theirs = measure_peer(peer, workload, redis_url, Path(scratch))
                out += report(workload, found, theirs)
                print("\n".join(report(workload, found, theirs)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
