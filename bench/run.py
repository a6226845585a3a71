"""`make bench`: authserver against node-oidc-provider on this machine, side by side.

Both servers run at once on loopback (the idle one costs nothing) and wrk loads one at
a time: every workload, authserver then the peer, then the other way round in the next
round, several rounds. Only ratios from one run count (the machine is noisy), so each
ratio authserver/peer is printed with its median and spread over the rounds.

    .venv/bin/python -m bench.run [--rounds 3] [--duration 5] [--quick] [--skip-scale] ...
    .venv/bin/python -m bench.run --quick --ours-only --workers 2 --skip-signin  # CI smoke

The load generator is wrk (C, one thread per core, keep-alive) with bench/wrk/flow.lua;
its own CPU per request is printed so a saturated generator shows. Every run's sampled
answers are verified (bench/verify.py): a wrong answer fails the whole run.
`--ours-only` runs authserver alone (no node, no peer), ES256, and fails on any failed
request as well: the smoke `.ci/run` runs so that the bench cannot rot.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

from bench import peer as peer_module
from bench.peer import Peer, pkce_pair
from bench.target import Authserver
from bench.verify import VerificationError, verify_run

if TYPE_CHECKING:
    from bench.cleanup import Cleanup

BENCH_DIR = Path(__file__).resolve().parent
LUA = BENCH_DIR / "wrk" / "flow.lua"
OURS_PORT, PEER_PORT, SCALE_PORT = 5711, 5712, 5713
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Refresh tokens per wrk thread and round: rotation keeps the pool's size, it only
# has to exceed the connections a thread serves.
REFRESH_POOL = 48


class Target(Protocol):
    """What bench/peer.py's Peer and bench/target.py's Authserver both offer."""

    name: str
    alg: str
    client_id: str
    client_secret: str
    redirect_uri: str
    issuer: str
    token_endpoint: str
    introspection_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    discovery_url: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def pids(self) -> list[int]: ...
    def authorize_url(self, code_challenge: str) -> str: ...
    def browser_session(self) -> dict[str, str]: ...
    def userinfo_token(self) -> str: ...
    def refresh_tokens(self, n: int) -> list[str]: ...
    def introspection_token(self) -> str: ...
    def refresh(self, refresh_token: str) -> dict[str, Any]: ...


@dataclass
class Run:
    """One wrk run against one server."""

    ok: int
    failed: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float  # per successful operation
    wrk_cpu_ms: float  # per request
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Workload:
    """A named load: how to build wrk's environment for a prepared server."""

    name: str
    env: Callable[[Target, Path], dict[str, str]]
    note: str = ""


@dataclass
class Result:
    workload: str
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def median(self, name: str, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs[name])

    def ratios(self, ours: str, theirs: str) -> list[float]:
        return [
            a.rate / b.rate if b.rate else 0.0
            for a, b in zip(self.runs[ours], self.runs[theirs], strict=True)
        ]


# -- workloads ----------------------------------------------------------------------


def _basic(target: Target) -> str:
    return base64.b64encode(f"{target.client_id}:{target.client_secret}".encode()).decode()


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def client_credentials(target: Target, _: Path) -> dict[str, str]:
    return {
        "BENCH_MODE": "post",
        "BENCH_PATH": _path(target.token_endpoint),
        "BENCH_AUTH": _basic(target),
        "BENCH_BODY": "grant_type=client_credentials&scope=read",
    }


def code_exchange(target: Target, _: Path) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    cookies = target.browser_session()
    return {
        "BENCH_MODE": "code",
        "BENCH_PATH": _path(target.token_endpoint),
        "BENCH_AUTH": _basic(target),
        "BENCH_AUTHORIZE": _path(target.authorize_url(challenge)),
        "BENCH_COOKIE": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "BENCH_VERIFIER": verifier,
        "BENCH_REDIRECT_URI": quote(target.redirect_uri, safe=""),
    }


def refresh_rotation(target: Target, scratch: Path) -> dict[str, str]:
    tokens = target.refresh_tokens(REFRESH_POOL * 2)
    path = scratch / f"{target.name}-refresh-{time.monotonic_ns()}.txt"
    path.write_text("\n".join(tokens) + "\n")
    return {
        "BENCH_MODE": "refresh",
        "BENCH_PATH": _path(target.token_endpoint),
        "BENCH_AUTH": _basic(target),
        "BENCH_TOKENS": str(path),
    }


def introspection(target: Target, _: Path) -> dict[str, str]:
    return {
        "BENCH_MODE": "post",
        "BENCH_PATH": _path(target.introspection_endpoint),
        "BENCH_AUTH": _basic(target),
        "BENCH_BODY": f"token={target.introspection_token()}",
    }


def userinfo(target: Target, _: Path) -> dict[str, str]:
    return {
        "BENCH_MODE": "get",
        "BENCH_PATH": _path(target.userinfo_endpoint),
        "BENCH_HEADER": f"Authorization: Bearer {target.userinfo_token()}",
    }


def jwks(target: Target, _: Path) -> dict[str, str]:
    return {"BENCH_MODE": "get", "BENCH_PATH": _path(target.jwks_uri)}


def discovery(target: Target, _: Path) -> dict[str, str]:
    return {"BENCH_MODE": "get", "BENCH_PATH": _path(target.discovery_url)}


WORKLOADS = {
    "client_credentials": Workload("client_credentials", client_credentials),
    "code_exchange": Workload(
        "code_exchange", code_exchange, "authorize (existing session) + token; per exchange"
    ),
    "refresh": Workload("refresh", refresh_rotation, "with rotation"),
    "introspection": Workload(
        "introspection", introspection, "peer: opaque token (it introspects no JWT)"
    ),
    "userinfo": Workload("userinfo", userinfo, "peer: opaque token (no JWT at userinfo)"),
    "jwks": Workload("jwks", jwks),
    "discovery": Workload("discovery", discovery),
}


# -- measuring ----------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all threads), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_wrk(
    target: Target,
    env: dict[str, str],
    seconds: float,
    connections: int,
    threads: int,
    samples: Path | None = None,
    until: Callable[[], object] | None = None,
) -> Run:
    """One bounded wrk run; the server's CPU is read before and after.

    With `samples`, a path prefix, each wrk thread writes answers it sampled to
    `samples`-<thread>.txt (flow.lua's BENCH_SAMPLES) for bench/verify.py. With `until`,
    wrk is interrupted as soon as `until()` returns (SIGINT: it stops and reports what it
    measured so far, as at the end of its duration); `seconds` is then only a limit.
    """
    base = f"http://{urlsplit(target.issuer).netloc}"
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base,
    ]
    pids = target.pids()
    before = cpu_seconds(pids)
    wrk_before = _reaped_children_cpu()
    process = subprocess.Popen(
        command,
        env={
            **os.environ,
            **env,
            "BENCH_THREADS": str(threads),
            **({"BENCH_SAMPLES": str(samples)} if samples else {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if until is not None:
        try:
            until()
        finally:
            process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate()
    after = cpu_seconds(pids)
    # The generator's own CPU, to show it is not the bottleneck.
    wrk_cpu = _reaped_children_cpu() - wrk_before
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {stdout[-500:]} {stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    ok = max(data["ok"], 1)
    return Run(
        ok=data["ok"],
        failed=data["failed"],
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        server_cpu_ms=(after - before) * 1000 / ok,
        wrk_cpu_ms=wrk_cpu * 1000 / max(data["requests"], 1),
        socket_errors=data["socket_errors"],
    )


def _reaped_children_cpu() -> float:
    """CPU of this process's reaped children so far (wrk, once communicate() returns)."""
    now = os.times()
    return now.children_user + now.children_system


# -- orchestration -------------------------------------------------------------------


@contextmanager
def running(target: Any) -> Iterator[Any]:
    target.start()
    try:
        yield target
    finally:
        target.stop()


def verified_run(
    target: Target,
    workload: Workload,
    args: argparse.Namespace,
    scratch: Path,
    seconds: float,
) -> tuple[Run, int]:
    """One wrk run of `workload` on `target`, its sampled answers verified; and their number.

    Raises VerificationError on a wrong answer and, under --ours-only, on any failed one.
    """
    samples = scratch / f"samples-{target.name}-{workload.name}-{time.monotonic_ns()}"
    env = workload.env(target, scratch)
    run = run_wrk(target, env, seconds, args.connections, 2, samples)
    checked = verify_run(target, workload.name, samples, run.ok)
    if args.ours_only and (run.failed or run.socket_errors):
        raise VerificationError(
            f"{target.name} {workload.name}: {run.failed} failed requests,"
            f" {run.socket_errors} socket errors"
        )
    return run, checked


def compare(
    targets: list[Target],
    workloads: list[Workload],
    args: argparse.Namespace,
    scratch: Path,
    label: str,
) -> list[Result]:
    """Alternate the targets on each workload for `args.rounds` rounds, after a warm-up."""
    results = [Result(w.name, {t.name: [] for t in targets}) for w in workloads]
    for workload in workloads:
        for target in targets:
            _, checked = verified_run(target, workload, args, scratch, args.warmup)
            print(
                f"  [{label}] warm-up {workload.name:<18} {target.name:<14} verified"
                f" {checked} samples",
                flush=True,
            )
    for round_number in range(args.rounds):
        order = targets if round_number % 2 == 0 else list(reversed(targets))
        for workload, result in zip(workloads, results, strict=True):
            for target in order:
                run, checked = verified_run(target, workload, args, scratch, args.duration)
                result.runs[target.name].append(run)
                print(
                    f"  [{label}] round {round_number + 1} {workload.name:<18} {target.name:<14}"
                    f" {run.rate:8.0f}/s  p99 {run.p99_ms:6.1f} ms  cpu {run.server_cpu_ms:.3f}"
                    f" ms/op  wrk {run.wrk_cpu_ms:.3f} ms/req  failed {run.failed}"
                    f"  verified {checked} samples",
                    flush=True,
                )
    return results


def table(results: list[Result], ours: str, theirs: str, title: str) -> list[str]:
    """Markdown: rates, ratio median [min-max], p99, CPU per operation, failures."""
    lines = [
        f"### {title}",
        "",
        f"| workload | {ours} /s | {theirs} /s | ratio (median [min-max]) | p99 ms "
        f"{ours} / {theirs} | CPU ms/op {ours} / {theirs} | wrk CPU ms/req | failed |",
        "|---|---:|---:|---|---|---|---:|---:|",
    ]
    for result in results:
        ratios = result.ratios(ours, theirs)
        failed = sum(r.failed + r.socket_errors for runs in result.runs.values() for r in runs)
        note = WORKLOADS[result.workload].note if result.workload in WORKLOADS else ""
        name = f"{result.workload} ({note})" if note else result.workload
        lines.append(
            f"| {name} | {result.median(ours, 'rate'):.0f} | {result.median(theirs, 'rate'):.0f}"
            f" | **{statistics.median(ratios):.2f}x** [{min(ratios):.2f}-{max(ratios):.2f}]"
            f" | {result.median(ours, 'p99_ms'):.1f} / {result.median(theirs, 'p99_ms'):.1f}"
            f" | {result.median(ours, 'server_cpu_ms'):.3f} /"
            f" {result.median(theirs, 'server_cpu_ms'):.3f}"
            f" | {result.median(ours, 'wrk_cpu_ms'):.3f} | {failed} |"
        )
    return [*lines, ""]


def solo_table(results: list[Result], name: str, title: str) -> list[str]:
    """Markdown for one server alone (--ours-only): rate, p99, CPU per operation, failures."""
    lines = [
        f"### {title}",
        "",
        "| workload | /s | p99 ms | CPU ms/op | wrk CPU ms/req | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        failed = sum(r.failed + r.socket_errors for r in result.runs[name])
        lines.append(
            f"| {result.workload} | {result.median(name, 'rate'):.0f}"
            f" | {result.median(name, 'p99_ms'):.1f} | {result.median(name, 'server_cpu_ms'):.3f}"
            f" | {result.median(name, 'wrk_cpu_ms'):.3f} | {failed} |"
        )
    return [*lines, ""]


@dataclass
class Check:
    target: str
    value: str
    passed: bool


def side_by_side(args: argparse.Namespace, scratch: Path) -> tuple[list[str], list[Check]]:
    """Every workload at 1 and 2 processes, ES256; client_credentials also RS256.

    With --ours-only, authserver alone and ES256 only.
    """
    out: list[str] = []
    checks: list[Check] = []
    chosen = [WORKLOADS[name] for name in args.workloads]
    for workers in args.workers:
        for alg in ("ES256",) if args.ours_only else ("ES256", "RS256"):
            workloads = chosen if alg == "ES256" else [WORKLOADS["client_credentials"]]
            workloads = [w for w in workloads if w.name in args.workloads]
            if not workloads:
                continue
            label = f"{workers}w {alg}"
            ours = Authserver(OURS_PORT, workers, alg, server=args.server)
            targets: list[Target] = [ours]
            if args.ours_only:
                print(f"== {label}: authserver ({args.server}) alone", flush=True)
            else:
                print(f"== {label}: authserver ({args.server}) and oidc-provider", flush=True)
                targets.append(Peer(PEER_PORT, workers, alg))
            with ExitStack() as stack:
                for target in targets:
                    stack.enter_context(running(target))
                results = compare(targets, workloads, args, scratch, label)
                worker_rss = [rss_mb(pid) for pid in ours.pids()[1:]] or [
                    rss_mb(pid) for pid in ours.pids()
                ]
            title = f"{workers} process{'es' if workers > 1 else ''}, access tokens {alg}"
            if args.ours_only:
                out += solo_table(results, ours.name, f"authserver alone, {title}")
            else:
                out += table(results, ours.name, targets[1].name, title)
            out.append(f"authserver RSS per worker after the runs: {_mbs(worker_rss)}")
            out.append("")
            if workers == 2 and args.ours_only:
                checks += rss_met(alg, worker_rss)
            elif workers == 2:
                checks += targets_met(results, alg, worker_rss)
    return out, checks


def _mbs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f} MB" for v in values)


TARGET_RATIOS = {
    ("ES256", "client_credentials"): 1.2,
    ("RS256", "client_credentials"): 1.0,
    ("ES256", "code_exchange"): 1.0,
    ("ES256", "refresh"): 1.0,
    ("ES256", "introspection"): 1.0,
    ("ES256", "userinfo"): 1.0,
    ("ES256", "jwks"): 1.0,
    ("ES256", "discovery"): 1.0,
}
# Issue 12's memory and sign-in targets.
RSS_PER_WORKER_MB = 100
SIGNINS_PER_CORE = 30


def targets_met(results: list[Result], alg: str, worker_rss: list[float]) -> list[Check]:
    checks = []
    for result in results:
        ratio = statistics.median(result.ratios("authserver", "oidc-provider"))
        wanted = TARGET_RATIOS.get((alg, result.workload))
        if wanted is not None:
            checks.append(
                Check(f"{result.workload} {alg} ≥ {wanted}x", f"{ratio:.2f}x", ratio >= wanted)
            )
        ours_p99 = result.median("authserver", "p99_ms")
        theirs_p99 = result.median("oidc-provider", "p99_ms")
        checks.append(
            Check(
                f"p99 {result.workload} {alg} ≤ peer's",
                f"{ours_p99:.1f} / {theirs_p99:.1f} ms",
                ours_p99 <= theirs_p99,
            )
        )
    return checks + rss_met(alg, worker_rss)


def rss_met(alg: str, worker_rss: list[float]) -> list[Check]:
    """authserver's memory per worker after the ES256 runs."""
    if alg != "ES256" or not worker_rss:
        return []
    met = max(worker_rss) <= RSS_PER_WORKER_MB
    return [Check(f"RSS per worker ≤ {RSS_PER_WORKER_MB} MB", _mbs(worker_rss), met)]


def scale(args: argparse.Namespace, scratch: Path) -> tuple[list[str], list[Check]]:
    """Refresh and introspection on PostgreSQL: 1,000,000 rows against an empty database."""
    print(f"== scale: {args.scale_rows:,} rows against an empty database", flush=True)
    empty = Authserver(OURS_PORT, 2, "ES256", server=args.server)
    seeded = Authserver(SCALE_PORT, 2, "ES256", server=args.server, seed_rows=args.scale_rows)
    empty.name, seeded.name = "empty", "seeded"
    workloads = [WORKLOADS["refresh"], WORKLOADS["introspection"]]
    with ExitStack() as stack:
        started = time.monotonic()
        stack.enter_context(running(seeded))
        print(f"  seeded and started in {time.monotonic() - started:.0f} s", flush=True)
        stack.enter_context(running(empty))
        results = compare([seeded, empty], workloads, args, scratch, "scale")
    title = f"authserver, 2 workers: {args.scale_rows:,} rows (seeded) against an empty database"
    out = table(results, "seeded", "empty", title)
    checks = [
        Check(
            f"{result.workload} with {args.scale_rows:,} rows within 10% of empty",
            f"{statistics.median(result.ratios('seeded', 'empty')):.2f}x",
            statistics.median(result.ratios("seeded", "empty")) >= 0.9,
        )
        for result in results
    ]
    return out, checks


# The token load around `authserver cleanup`: both at once, the connections split.
CLEANUP_LOAD = ("refresh", "client_credentials")
CLEANUP_P99_RATIO = 1.5


def cleanup_under_load(args: argparse.Namespace, scratch: Path) -> tuple[list[str], list[Check]]:
    """Token p99 before and while `authserver cleanup` purges `--scale-rows` expired grants."""
    # Imported here: bench/cleanup.py loads the whole application.
    from bench.cleanup import CLEANUP_TIMEOUT, count_rows, rows_table, run_cleanup

    print(f"== cleanup: {args.scale_rows:,} expired grants and their rows, under load", flush=True)
    target = Authserver(
        SCALE_PORT, 2, "ES256", server=args.server, seed_rows=args.scale_rows, seed_expired=True
    )
    target.name = "cleanup"
    workloads = [WORKLOADS[name] for name in CLEANUP_LOAD]
    done: list[Cleanup] = []
    with running(target):
        assert target.database_url is not None
        rows_before = count_rows(target.database_url)
        together(target, workloads, args, scratch, args.warmup, "warm-up")
        before = together(target, workloads, args, scratch, args.duration * args.rounds, "before")
        during = together(
            target,
            workloads,
            args,
            scratch,
            CLEANUP_TIMEOUT + 60,
            "during cleanup",
            meanwhile=lambda: done.append(run_cleanup(target, args.cleanup_options.split())),
        )
        rows_after = count_rows(target.database_url)
    expired = sum(rows.past for rows in rows_before.values())
    left = sum(rows.past for rows in rows_after.values())
    out, checks = cleanup_report(args, before, during, done[0], expired, left)
    return [*out, *rows_table(rows_before, rows_after, done[0])], checks


def together(
    target: Authserver,
    workloads: list[Workload],
    args: argparse.Namespace,
    scratch: Path,
    seconds: float,
    label: str,
    meanwhile: Callable[[], object] | None = None,
) -> dict[str, Run]:
    """The workloads at once for `seconds`, or while `meanwhile()` runs; each run verified."""
    connections = max(1, args.connections // len(workloads))
    envs = {w.name: w.env(target, scratch) for w in workloads}
    samples = {name: scratch / f"samples-{label}-{name}-{time.monotonic_ns()}" for name in envs}
    stop = threading.Event()
    until = stop.wait if meanwhile else None
    with ThreadPoolExecutor(len(envs)) as pool:
        futures = {
            name: pool.submit(run_wrk, target, env, seconds, connections, 1, samples[name], until)
            for name, env in envs.items()
        }
        try:
            if meanwhile is not None:
                meanwhile()
        finally:
            stop.set()
        runs = {name: future.result() for name, future in futures.items()}
    for name, run in runs.items():
        checked = verify_run(target, name, samples[name], run.ok)
        print(
            f"  [cleanup] {label:<14} {name:<18} {run.rate:8.0f}/s  p99 {run.p99_ms:6.1f} ms"
            f"  {run.seconds:5.1f} s  failed {run.failed + run.socket_errors}"
            f"  verified {checked} samples",
            flush=True,
        )
        if args.ours_only and (run.failed or run.socket_errors):
            raise VerificationError(f"cleanup {label} {name}: {run.failed} failed requests")
    return runs


def cleanup_report(
    args: argparse.Namespace,
    before: dict[str, Run],
    during: dict[str, Run],
    cleanup: Cleanup,
    expired: int,
    left: int,
) -> tuple[list[str], list[Check]]:
    """Markdown for the load before and during cleanup; the two targets."""
    ratios = {name: during[name].p99_ms / max(before[name].p99_ms, 1e-3) for name in before}
    out = [
        f"### authserver cleanup of {expired:,} expired rows under load, 2 workers",
        "",
        f"`{cleanup.command}` on {args.scale_rows:,} expired grants and their tokens, while"
        f" {' and '.join(CLEANUP_LOAD)} run at once ({args.connections} connections in all);"
        f" before: {args.duration * args.rounds:g} s of the same load.",
        "",
        "| workload | /s before | /s during | p99 ms before | p99 ms during | p99 during/before"
        " | failed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ratio in ratios.items():
        b, d = before[name], during[name]
        failed = b.failed + b.socket_errors + d.failed + d.socket_errors
        out.append(
            f"| {name} | {b.rate:.0f} | {d.rate:.0f} | {b.p99_ms:.1f} | {d.p99_ms:.1f}"
            f" | **{ratio:.2f}x** | {failed} |"
        )
    out += [
        "",
        f"cleanup: {cleanup.seconds:.1f} s wall time (the command's start included),"
        f" {'finished' if cleanup.finished else '**not finished**'}. Refresh tokens go with"
        " their grant (ON DELETE CASCADE), which the command does not count.",
        "",
    ]
    checks = [
        Check(
            f"cleanup of {expired:,} expired rows under load: token p99 during"
            f" ≤ {CLEANUP_P99_RATIO}x before",
            ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items()),
            max(ratios.values()) <= CLEANUP_P99_RATIO,
        ),
        Check(
            "cleanup finished",
            f"{cleanup.seconds:.0f} s, {left:,} rows past their time left",
            cleanup.finished and left == 0,
        ),
    ]
    return out, checks


def signin(args: argparse.Namespace) -> tuple[list[str], list[Check]]:
    """Password sign-ins per second per core (argon2id m=19 MiB, t=2, p=1) and memory."""
    from bench.signin import measure_signins

    print("== sign-in", flush=True)
    figures = measure_signins(workers=2, seconds=args.duration * 2, server=args.server)
    out = ["### Password sign-in (argon2id, m=19 MiB, t=2, p=1), 2 workers", ""]
    out += [f"- {name}: {value:.1f}" for name, value in figures.items()]
    per_core = figures["signins_per_s_per_core"]
    peak = figures["peak_rss_mb"]
    checks = [
        Check(
            f"sign-ins ≥ {SIGNINS_PER_CORE}/s per core (server CPU)",
            f"{per_core:.1f}/s",
            per_core >= SIGNINS_PER_CORE,
        ),
        Check(
            "peak RSS per worker under concurrent sign-ins < 120 MB", f"{peak:.0f} MB", peak < 120
        ),
    ]
    return [*out, ""], checks


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    peer = ""
    if shutil.which("node") is not None:
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
        peer = f" node {node.strip()}, oidc-provider {_peer_version()},"
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores ({cpu}),"
        f" Python {platform.python_version()},{peer} {platform.platform()}"
    )


def _peer_version() -> str:
    package = peer_module.PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    return str(json.loads(package.read_text())["version"]) if package.exists() else "?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS))
    parser.add_argument("--scale-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--skip-cleanup", action="store_true")
    parser.add_argument(
        "--cleanup-options",
        default="",
        help="options of authserver cleanup, e.g. '--batch-size 1000' (default: its own)",
    )
    parser.add_argument("--skip-signin", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s: a smoke run")
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="authserver alone, ES256, no node or peer; any failed request fails the run",
    )
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.scale_rows = 1, 2.0, 1.0, 20_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("bench needs wrk: apt-get install -y wrk (make bench installs it)")
    if not args.ours_only:
        peer_module.install()
    title = "authserver alone" if args.ours_only else "authserver against node-oidc-provider"
    header = [
        f"## {title}",
        "",
        f"{machine()}; {args.rounds} rounds of {args.duration:g} s, {args.connections}"
        f" connections, wrk with 2 threads; authserver on {args.server}.",
        "",
    ]
    out: list[str] = []
    checks: list[Check] = []
    with tempfile.TemporaryDirectory(prefix="authserver-bench-") as scratch:
        for part in (
            lambda: side_by_side(args, Path(scratch)),
            None if args.skip_scale else lambda: scale(args, Path(scratch)),
            None if args.skip_cleanup else lambda: cleanup_under_load(args, Path(scratch)),
            None if args.skip_signin else lambda: signin(args),
        ):
            if part is not None:
                try:
                    lines, found = part()
                except VerificationError as error:
                    print(f"bench: verification failed: {error}", file=sys.stderr)
                    return 1
                out += lines
                checks += found
    out += ["### Targets", "", "| target | measured | met |", "|---|---|---|"]
    out += [f"| {c.target} | {c.value} | {'yes' if c.passed else '**no**'} |" for c in checks]
    text = "\n".join(header + out) + "\n"
    print("\n" + text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
