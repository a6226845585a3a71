"""`authserver cleanup` run as cron runs it, against a bench target, and what it leaves.

`run_cleanup()` runs the real command (a subprocess, with the target's environment) and
times it. `count_rows()` counts, in each table bench/scale.py's `seed()` fills and
cleanup purges, every row and the rows past their time: those that the command's own
conditions (authserver/maintenance.py's PURGES, at the default grace period) select, so
a finished cleanup leaves zero of them. bench/run.py's `cleanup_under_load()` runs the
token load around them.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, create_engine, func, select
from sqlalchemy.pool import NullPool

from authserver.config import Config
from authserver.maintenance import DEFAULT_GRACE, PURGES, cutoffs
from bench.target import BIN, ROOT, Authserver

# The tables seed() fills that cleanup purges, in cleanup's order.
PURGED_TABLES = ("grants", "refresh_tokens", "authorization_codes", "revoked_access_tokens")
# A cleanup still running after this long has not finished: it is stopped.
CLEANUP_TIMEOUT = 1800.0


@dataclass
class Cleanup:
    """One `authserver cleanup`: its wall time and what it printed."""

    command: str  # as run, options included
    seconds: float
    deleted: dict[str, int]  # per table, as the command counts (not cascaded rows)
    finished: bool  # exited 0 within CLEANUP_TIMEOUT


@dataclass
class Rows:
    """One table's rows: all of them, and those past their time."""

    total: int
    past: int


def run_cleanup(target: Authserver, options: list[str]) -> Cleanup:
    """`authserver cleanup <options>` on the target's database, with its environment; timed."""
    shown = " ".join(["authserver cleanup", *options])
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(BIN / "authserver"), "cleanup", *options],
            cwd=ROOT,
            env=target.env(),
            capture_output=True,
            text=True,
            timeout=CLEANUP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Cleanup(shown, time.monotonic() - started, {}, False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        print(f"  {shown} failed:\n{done.stderr[-2000:]}", flush=True)
    return Cleanup(shown, seconds, _deleted(done.stdout), done.returncode == 0)


def _deleted(stdout: str) -> dict[str, int]:
    """The command's lines "<table>: <count>" as a dict."""
    pairs = (line.split(": ", 1) for line in stdout.splitlines() if ": " in line)
    return {table: int(count) for table, count in pairs if count.strip().isdigit()}


def count_rows(database_url: str) -> dict[str, Rows]:
    """Per purged table: all rows, and the rows cleanup would delete now (default grace)."""
    limits = cutoffs(Config(), grace=DEFAULT_GRACE)
    purges = [purge for purge in PURGES if purge.table in PURGED_TABLES]
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return {
                purge.table: Rows(
                    _count(conn, select(func.count()).select_from(purge.model)),
                    _count(
                        conn,
                        select(func.count())
                        .select_from(purge.model)
                        .where(purge.condition(limits)),
                    ),
                )
                for purge in purges
            }
    finally:
        engine.dispose()


def _count(conn: Connection, query: Select[Any]) -> int:
    return int(conn.scalar(query) or 0)


def rows_table(before: dict[str, Rows], after: dict[str, Rows], cleanup: Cleanup) -> list[str]:
    """Markdown: per table, rows and rows past their time before and after, and the deleted."""
    lines = [
        "| table | rows before | past their time before | cleanup printed | rows after"
        " | past their time after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for table in PURGED_TABLES:
        printed = cleanup.deleted.get(table)
        lines.append(
            f"| {table} | {before[table].total:,} | {before[table].past:,}"
            f" | {'-' if printed is None else f'{printed:,}'} | {after[table].total:,}"
            f" | {after[table].past:,} |"
        )
    return [*lines, ""]
