"""examples/cli_login.py: logs in through the device flow with the browser approving,
calls whoami (also after the access token expired: refresh with rotation), and logs out."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.servers import LiveServer
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CLI = Path(__file__).resolve().parents[3] / "examples" / "cli_login.py"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CODE_LINE = re.compile(r"open (\S+) and enter the code: (\S+)")
COMPLETE_LINE = re.compile(r"Or open: (\S+)")


@pytest.fixture
def cli(live: LiveServer, tmp_path: Path, clean_env: dict[str, str]) -> Any:
    """Build the command line for the CLI, with a registered public device client."""
    live.make_user()
    client_id, _ = live.make_client(
        (),
        name="Example CLI",
        grant_types=(DEVICE_CODE_GRANT, "refresh_token"),
        scope="openid profile email offline_access",
        auth_method="none",
    )

    def command(*args: str) -> list[str]:
        options = ["--issuer", live.url, "--client-id", client_id, "--config-dir", str(tmp_path)]
        return [sys.executable, "-u", str(CLI), *options, *args]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command(*args), capture_output=True, text=True, timeout=30, env=clean_env
        )

    command.run = run  # type: ignore[attr-defined]
    command.client_id = client_id  # type: ignore[attr-defined]
    return command


def approve_in_browser(browser: Browser, url: str) -> None:
    """The person opens the link, signs in, checks the code and allows the device."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url)
        page.get_by_label("E-mail").fill("alice@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Allow").click()
        page.get_by_role("heading", name="Device connected").wait_for()
    finally:
        context.close()


@pytest.mark.server(device_poll_interval=1)
def test_login_whoami_refresh_and_logout(
    live: LiveServer, browser: Browser, cli: Any, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    with subprocess.Popen(
        cli("login", "--no-browser"), stdout=subprocess.PIPE, text=True, env=clean_env
    ) as login:
        assert login.stdout is not None
        first = CODE_LINE.search(login.stdout.readline())
        assert first, "the CLI did not print the verification URI and code"
        assert first.group(1) == f"{live.url}/device"
        complete = COMPLETE_LINE.search(login.stdout.readline())
        assert complete and first.group(2) in complete.group(1)
        approve_in_browser(browser, complete.group(1))
        assert login.wait(timeout=30) == 0
        assert "Signed in." in login.stdout.read()

    tokens_file = tmp_path / "tokens.json"
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    tokens = json.loads(tokens_file.read_text())
    assert tokens["access_token"] and tokens["refresh_token"]

    whoami = cli.run("whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["email"] == "alice@example.com"

    # The access token has expired: whoami refreshes first and keeps the rotated refresh token.
    tokens_file.write_text(json.dumps({**tokens, "expires_at": 0}))
    again = cli.run("whoami")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["email"] == "alice@example.com"
    refreshed = json.loads(tokens_file.read_text())
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600

    logout = cli.run("logout")
    assert logout.returncode == 0, logout.stderr
    assert not tokens_file.exists()
    # The refresh token is inactive now: the server refuses it.
    refused = live.http.post(
        f"{live.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refreshed["refresh_token"],
            "client_id": cli.client_id,
        },
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    gone = cli.run("whoami")
    assert gone.returncode == 1 and "not signed in" in gone.stderr


def test_whoami_before_login_says_so(cli: Any) -> None:
    result = cli.run("whoami")
    assert result.returncode == 1
    assert "run `login` first" in result.stderr
