"""Sign-in: password sign-ins per second per core, and memory per worker while they run.

Every sign-in verifies an argon2id hash at OWASP's parameters (m=19 MiB, t=2, p=1): the
costliest request the server has, in time and in memory. `measure_signins()` starts an
`Authserver`, has `concurrency` browsers (threads, each its own requests.Session) sign
in over and over for `seconds`, and samples the resident memory of every worker every
50 ms.

    .venv/bin/python -m bench.signin [--workers 2] [--seconds 10] [--concurrency 8]

Each sign-in is the page (GET /login, a fresh CSRF token) and the form (POST e-mail and
the right password, answered 302 with a session cookie); the browser then forgets its
cookies, as a new browser would, so the next sign-in is a full password check again
(a signed-in browser's GET /login is only a redirect). One account serves every
browser: the per-account lockout counts wrong passwords only, and the rate limits are
raised beyond the load (see bench/target.py); `errors` shows whether any was refused.

"Per core" is sign-ins per second of server CPU: 1000 / the workers' CPU milliseconds
per sign-in (user + system, read from /proc), the rate one core of the server sustains.
The load generator (these Python threads) runs on the same cores and costs several
milliseconds per sign-in itself (`loadgen_cpu_ms_per_signin`), and on a shared machine
other processes take their share too, so sign-ins per second of wall time divided by the
cores (`signins_per_s_per_core_wall`, the figure before issue 12) understates the server;
both are printed. The workers' system time and minor page faults per sign-in show what
the memory of the hash costs the kernel (every page of a freshly mapped buffer faults).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from urllib.parse import urljoin

import argon2
import psycopg2
import requests

from authserver.config import Config
from bench.target import HTTP_TIMEOUT, Authserver, AuthserverError, post_form

SAMPLE_INTERVAL = 0.05
SESSION_COOKIE = "authserver_session"
# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB (19456 KiB), t=2, p=1.
OWASP_MEMORY_COST, OWASP_TIME_COST, OWASP_PARALLELISM = 19 * 1024, 2, 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

T = TypeVar("T")


@dataclass
class _Browsers:
    """What the browser threads record, under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: int = 0


def measure_signins(
    workers: int = 2, seconds: float = 10.0, concurrency: int = 8, server: str = "granian"
) -> dict[str, float]:
    """Sign-ins per second (and per core), POST latency, CPU per sign-in, RSS per worker."""
    check_argon2_defaults()
    target = Authserver(_free_port(), workers, "ES256", server)
    target.start()
    try:
        stored = _stored_argon2_parameters(target)
        owasp = f"m={OWASP_MEMORY_COST},t={OWASP_TIME_COST},p={OWASP_PARALLELISM}"
        if stored != owasp:
            raise AuthserverError(f"the bench user's hash has {stored}, not {owasp}")
        worker_pids = target.worker_pids()
        idle = _rss_mb(worker_pids)
        idle_anon = _rss_mb(worker_pids, "RssAnon")
        # Every worker builds its hasher and loads its templates before the clock starts.
        _run_browsers(target, max(concurrency, 2 * workers), 0.5, sign_in=True)
        pages = _measure_cpu(worker_pids, lambda: _run_browsers(target, concurrency, 2.0, False))
        rss = _RssSampler(worker_pids)
        before = _rss_mb(worker_pids)
        with rss:
            started = time.perf_counter()
            counters, loadgen = _counters(worker_pids), _own_cpu_seconds()
            result = _run_browsers(target, concurrency, seconds, True)
            spent = _counters(worker_pids) - counters
            loadgen = _own_cpu_seconds() - loadgen
            elapsed = time.perf_counter() - started
        end = _rss_mb(worker_pids)
        end_anon = _rss_mb(worker_pids, "RssAnon")
    finally:
        target.stop()
    if result.errors:
        print(f"first of {len(result.errors)} errors: {result.errors[0]}", file=sys.stderr)
    signins = len(result.latencies)
    page_result, page_cpu = pages
    cpu_per_page = page_cpu / max(page_result.requests, 1)
    per_signin = 1 / max(signins, 1)
    cpu_per_signin = spent.cpu_seconds * per_signin
    latencies = sorted(result.latencies)
    cores = min(workers, os.cpu_count() or 1)
    return {
        "workers": float(workers),
        "concurrency": float(concurrency),
        "seconds": elapsed,
        "signins": float(signins),
        "signins_per_s": signins / elapsed,
        # Sign-ins per second of server CPU: what one core of the server sustains.
        "signins_per_s_per_core": 1 / cpu_per_signin if cpu_per_signin else 0.0,
        # Wall-clock rate over the cores, which the load generator shares (before issue 12).
        "signins_per_s_per_core_wall": signins / elapsed / cores,
        "post_p50_ms": _percentile(latencies, 0.50) * 1000,
        "post_p99_ms": _percentile(latencies, 0.99) * 1000,
        "cpu_ms_per_signin": cpu_per_signin * 1000,
        "cpu_ms_per_page": cpu_per_page * 1000,
        "cpu_ms_per_post": (cpu_per_signin - cpu_per_page) * 1000,
        "sys_ms_per_signin": spent.system_seconds * per_signin * 1000,
        "minor_faults_per_signin": spent.minor_faults * per_signin,
        "loadgen_cpu_ms_per_signin": loadgen * per_signin * 1000,
        "argon2_verify_ms": argon2_verify_seconds() * 1000,
        "rss_mb_idle": max(idle.values()),
        "rss_mb_before": max(before.values()),
        "peak_rss_mb": max(rss.peak.values()),
        "rss_mb_end": max(end.values()),
        "rss_anon_mb_idle": max(idle_anon.values()),
        "peak_rss_anon_mb": max(rss.peak_anon.values()),
        "rss_anon_mb_end": max(end_anon.values()),
        "errors": float(len(result.errors)),
    }


def check_argon2_defaults() -> None:
    """The config's argon2id defaults are OWASP's m=19456 KiB, t=2 (p=1 is fixed in code)."""
    defaults = {f.name: f.default for f in fields(Config)}
    found = (defaults["argon2_memory_cost"], defaults["argon2_time_cost"])
    if found != (OWASP_MEMORY_COST, OWASP_TIME_COST):
        raise AuthserverError(f"authserver/config.py argon2 defaults are m, t = {found}")


def argon2_verify_seconds(rounds: int = 10) -> float:
    """CPU seconds of one argon2id verification at OWASP's parameters, in this process.

    Thread CPU time, not wall time: on a shared machine the wall clock counts the waits
    for a core too. Through argon2-cffi and malloc: the block stays in this process's heap
    after the first round, so no page faults are counted (the workers' are, per sign-in).
    """
    hasher = argon2.PasswordHasher(
        time_cost=OWASP_TIME_COST,
        memory_cost=OWASP_MEMORY_COST,
        parallelism=OWASP_PARALLELISM,
        type=argon2.Type.ID,
    )
    stored = hasher.hash("bench password")
    hasher.verify(stored, "bench password")
    started = time.thread_time()
    for _ in range(rounds):
        hasher.verify(stored, "bench password")
    return (time.thread_time() - started) / rounds


def _stored_argon2_parameters(target: Authserver) -> str:
    """The m, t, p of the bench person's password hash, as the server stored it."""
    assert target.database_url is not None
    conn = psycopg2.connect(target.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT password_hash FROM users WHERE email = %s", (target.email,))
            row = cur.fetchone()
    finally:
        conn.close()
    if row is None:
        raise AuthserverError(f"no user {target.email}")
    # $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    return str(row[0]).split("$")[3]


def _run_browsers(target: Authserver, concurrency: int, seconds: float, sign_in: bool) -> _Browsers:
    """`concurrency` browsers, each signing in (or only fetching the page) until time is up."""
    login_url = urljoin(target.issuer + "/", "login")
    deadline = time.perf_counter() + seconds
    record = _Browsers()

    def browse() -> None:
        session = requests.Session()
        while time.perf_counter() < deadline:
            # A new browser each time: no session, so the page is the form again.
            session.cookies.clear()
            took: float | None = None
            try:
                if sign_in:
                    took = _sign_in(session, target, login_url)
                else:
                    session.get(login_url, timeout=HTTP_TIMEOUT).raise_for_status()
            except (AuthserverError, requests.RequestException) as error:
                with record.lock:
                    record.errors.append(str(error)[:200])
                continue
            with record.lock:
                record.requests += 1
                if took is not None:
                    record.latencies.append(took)

    threads = [threading.Thread(target=browse) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return record


def _sign_in(session: requests.Session, target: Authserver, login_url: str) -> float:
    """GET the sign-in form, POST the right password; the POST's seconds."""
    page = session.get(login_url, timeout=HTTP_TIMEOUT)
    form = post_form(page.text) if page.status_code == 200 else None
    if form is None or "csrf_token" not in form[1]:
        raise AuthserverError(f"GET /login answered {page.status_code} without the form")
    action, data, _ = form
    data.update(email=target.email, password=target.password)
    started = time.perf_counter()
    response = session.post(
        urljoin(page.url, action), data=data, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    took = time.perf_counter() - started
    if response.status_code != 302 or SESSION_COOKIE not in session.cookies:
        raise AuthserverError(f"sign-in answered {response.status_code}: {response.text[:200]}")
    return took


def _measure_cpu(pids: list[int], action: Callable[[], T]) -> tuple[T, float]:
    """`action()`'s result and the CPU seconds (user + system) `pids` spent meanwhile."""
    before = _cpu_seconds(pids)
    result = action()
    return result, _cpu_seconds(pids) - before


def _cpu_seconds(pids: list[int]) -> float:
    """utime + stime of each process, summed."""
    return _counters(pids).cpu_seconds


@dataclass(frozen=True)
class _Counters:
    """CPU time and minor page faults of some processes, from /proc/<pid>/stat."""

    user_ticks: int
    system_ticks: int
    minor_faults: int

    @property
    def cpu_seconds(self) -> float:
        return (self.user_ticks + self.system_ticks) / CLOCK_TICKS

    @property
    def system_seconds(self) -> float:
        return self.system_ticks / CLOCK_TICKS

    def __sub__(self, other: _Counters) -> _Counters:
        return _Counters(
            self.user_ticks - other.user_ticks,
            self.system_ticks - other.system_ticks,
            self.minor_faults - other.minor_faults,
        )


def _counters(pids: list[int]) -> _Counters:
    """minflt, utime and stime (/proc/<pid>/stat fields 10, 14 and 15) of `pids`, summed."""
    user = system = faults = 0
    for pid in pids:
        # The command name (field 2) may hold spaces: split after its closing parenthesis.
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        faults += int(stat[7])
        user += int(stat[11])
        system += int(stat[12])
    return _Counters(user, system, faults)


def _own_cpu_seconds() -> float:
    """User + system CPU of this process (the load generator), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mb(pids: list[int], field: str = "VmRSS") -> dict[int, float]:
    """VmRSS (or another /proc/<pid>/status field in kB) of each process, in MB (10^6 bytes).

    VmRSS counts the pages of shared libraries a worker has touched (RssFile, shared with
    the other workers and 25 to 32 MB from one start to the next); RssAnon is its own.
    """
    found: dict[int, float] = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                found[pid] = int(line.split()[1]) * 1024 / 1e6
    return found


class _RssSampler:
    """Samples the workers' RSS every SAMPLE_INTERVAL in a thread; keeps each one's peak."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak: dict[int, float] = dict.fromkeys(pids, 0.0)
        self.peak_anon: dict[int, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            for pid, mb in _rss_mb(self.pids).items():
                self.peak[pid] = max(self.peak[pid], mb)
            for pid, mb in _rss_mb(self.pids, "RssAnon").items():
                self.peak_anon[pid] = max(self.peak_anon[pid], mb)
            if self._stop.wait(SAMPLE_INTERVAL):
                return


def _percentile(ordered: list[float], q: float) -> float:
    """The q-quantile of sorted values (nearest rank), 0 for none."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def report(result: dict[str, float], server: str) -> None:
    """The figures as a small table."""
    cores = min(int(result["workers"]), os.cpu_count() or 1)
    rows = [
        ("argon2id", "m=19456 KiB, t=2, p=1 (config defaults = OWASP; stored hash checked)"),
        (
            "load",
            f"{server}, {result['workers']:.0f} workers, {result['concurrency']:.0f} browsers, "
            f"{result['seconds']:.1f} s",
        ),
        ("sign-ins", f"{result['signins']:.0f} ({result['errors']:.0f} errors)"),
        ("sign-ins/s", f"{result['signins_per_s']:.1f}"),
        (
            "sign-ins/s per core",
            f"{result['signins_per_s_per_core']:.1f} per second of server CPU "
            f"({result['signins_per_s_per_core_wall']:.1f} = sign-ins/s / {cores} cores, "
            "shared with the load generator)",
        ),
        ("POST latency p50/p99", f"{result['post_p50_ms']:.0f} / {result['post_p99_ms']:.0f} ms"),
        (
            "CPU per sign-in",
            f"{result['cpu_ms_per_signin']:.1f} ms (GET page + POST, workers; "
            f"{result['sys_ms_per_signin']:.1f} ms system, "
            f"{result['minor_faults_per_signin']:.0f} minor faults)",
        ),
        (
            "CPU per POST",
            f"{result['cpu_ms_per_post']:.1f} ms (the page alone: {result['cpu_ms_per_page']:.1f})",
        ),
        ("load generator", f"{result['loadgen_cpu_ms_per_signin']:.1f} ms CPU per sign-in"),
        ("argon2id verify", f"{result['argon2_verify_ms']:.1f} ms of CPU (in the bench process)"),
        (
            "RSS per worker",
            f"{result['rss_mb_idle']:.1f} MB idle, {result['rss_mb_before']:.1f} MB warmed up, "
            f"{result['peak_rss_mb']:.1f} MB peak, {result['rss_mb_end']:.1f} MB at the end "
            "(largest worker)",
        ),
        (
            "of which anonymous",
            f"{result['rss_anon_mb_idle']:.1f} MB idle, {result['peak_rss_anon_mb']:.1f} MB peak, "
            f"{result['rss_anon_mb_end']:.1f} MB at the end (the rest: shared libraries)",
        ),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def main() -> None:
    """Measure once and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    args = parser.parse_args()
    result = measure_signins(args.workers, args.seconds, args.concurrency, args.server)
    report(result, args.server)


if __name__ == "__main__":
    main()
