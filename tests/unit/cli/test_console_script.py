"""The installed `authserver` console script, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

AUTHSERVER = Path(sys.executable).parent / "authserver"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def installed() -> Path:
    if not AUTHSERVER.exists():
        pytest.skip("the console script is not installed (run `make install`)")
    return AUTHSERVER


@pytest.fixture
def run_authserver(installed: Path, tmp_path: Path) -> Run:
    """Run the console script against a fresh SQLite database in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(
        AUTHSERVER_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
        AUTHSERVER_INSTANCE_PATH=str(tmp_path / "instance"),
        AUTHSERVER_SECRET_KEY="cli-test-secret-" + "y" * 40,
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(installed), *args], env=env, capture_output=True, text=True, timeout=60
        )

    upgraded = run("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    return run


def test_clients_create_json_prints_exactly_one_object_on_stdout(run_authserver: Run) -> None:
    done = run_authserver(
        "clients", "create", "--name", "Example RP",
        "--redirect-uri", "https://rp.example.com/callback",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", "openid profile email offline_access",
        "--auth-method", "client_secret_basic", "--json",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    registered = json.loads(done.stdout)  # raises on extra output before or after
    assert isinstance(registered, dict)
    assert registered["client_secret"] and registered["client_id"]
    assert registered["client_secret"] not in done.stderr

    listed = run_authserver("clients", "list", "--json")
    assert [c["client_id"] for c in json.loads(listed.stdout)] == [registered["client_id"]]


def test_a_refused_client_exits_non_zero_with_the_reason_on_stderr(run_authserver: Run) -> None:
    done = run_authserver(
        "clients", "create", "--name", "Bad", "--grant-type", "client_credentials",
        "--scope", "api:read", "--auth-method", "none", "--json",
    )  # fmt: skip

    assert done.returncode != 0
    assert done.stdout == ""
    assert "client_credentials" in done.stderr


def test_an_invalid_setting_fails_with_one_line_naming_it(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "AUTHSERVER_ACCESS_TOKEN_ALG": "HS256"}
    env["AUTHSERVER_INSTANCE_PATH"] = str(tmp_path / "instance")
    done = subprocess.run(
        [str(installed), "clients", "list"], env=env, capture_output=True, text=True, timeout=60
    )

    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "Error: AUTHSERVER_ACCESS_TOKEN_ALG: expected one of ES256, RS256"
    ]
