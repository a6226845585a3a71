"""Browser tests: Debian's chromium, headless, driven by Playwright against a live server.

One browser per session and a fresh context (cookies, storage) per test. Each
test gets its own live server on 127.0.0.1 (a fresh app over the test database;
tables are emptied after the test by `app_factory`) and shares a small relying
party on `localhost` and an SMTP server on loopback.

Without chromium the tests are skipped, unless CI=true: then they fail.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from flask import Flask

from tests.browser.accessibility import Accessibility
from tests.browser.mailbox import Mailbox, free_port
from tests.browser.pages import Tour, Tours
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import (
    LiveServer,
    run_in_thread,
    self_signed_certificate,
    serve,
    stop,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Debian's package; another path only to try the skip and fail rules.
CHROMIUM = Path(os.environ.get("BROWSER_TESTS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "server(**settings): config overrides for the browser test's live server"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures know whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _unavailable(reason: str) -> None:
    """Skip on a developer machine without a browser; fail in CI, where it must be there."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(f"{reason}; install it with `apt-get install -y chromium`")


# --- the browser ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless chromium from Debian's package (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def accessibility() -> Accessibility:
    """axe-core as shipped inside axe-playwright-python (no download at run time)."""
    from axe_playwright_python.sync_playwright import Axe

    return Accessibility(Axe())


# --- servers ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def relying_party_server() -> Iterator[RelyingParty]:
    """The test relying party, on its own port, named `localhost` (another site)."""
    rp = RelyingParty()
    server, _ = serve(rp)
    rp.url = f"http://localhost:{server.server_port}"
    thread = run_in_thread(server, "test-relying-party")
    yield rp
    stop(server, thread)


@pytest.fixture
def relying_party(relying_party_server: RelyingParty) -> RelyingParty:
    relying_party_server.reset()
    return relying_party_server


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[Mailbox, str]]:
    """aiosmtpd on 127.0.0.1; yields the mailbox and the AUTHSERVER_MAIL_URL for it."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[Mailbox, str]) -> Mailbox:
    smtp_server[0].clear()
    return smtp_server[0]


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for https://127.0.0.1 (the test's HTTP calls trust it)."""
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def live(request: pytest.FixtureRequest, app_factory: Any) -> Iterator[LiveServer]:
    """A fresh app served in a thread for this test.

    Settings come from `@pytest.mark.server(...)` and indirect parametrization;
    `mail=True` points the app at the loopback SMTP server, `https=True` serves
    TLS with a throw-away certificate.
    """
    settings: dict[str, Any] = {}
    marker = request.node.get_closest_marker("server")
    if marker is not None:
        settings.update(marker.kwargs)
    settings.update(getattr(request, "param", {}))
    certificate = None
    if settings.pop("https", False):
        certificate = request.getfixturevalue("certificate")
    if settings.pop("mail", False):
        settings["mail_url"] = request.getfixturevalue("smtp_server")[1]
    served: dict[str, Flask] = {}

    def late_bound(environ: dict[str, Any], start_response: Any) -> Any:
        return served["app"](environ, start_response)

    # Bind first (port 0 picks a free port), then build the app with that port in its issuer.
    server, url = serve(late_bound, certificate=certificate)
    served["app"] = app_factory(issuer=url, **settings)
    live = LiveServer(url, served["app"])
    # Environment settings (REQUESTS_CA_BUNDLE, proxies) would override the session's own.
    live.http.trust_env = False
    if certificate:
        live.http.verify = certificate[0]
    thread = run_in_thread(server, "live-authserver")
    try:
        yield live
    finally:
        live.http.close()
        stop(server, thread)


# --- one walk through the pages per browser context -------------------------------------


@pytest.fixture
def tours(
    request: pytest.FixtureRequest,
    browser: Browser,
    accessibility: Accessibility,
    live: LiveServer,
) -> Iterator[Tours]:
    """Browser contexts for this test; screenshots go to screenshots/<test name>/."""
    folder = SCREENSHOTS / _folder_name(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    made = Tours(browser, accessibility, live, folder)
    yield made
    report = getattr(request.node, "report_call", None)
    failed = report is None or report.failed
    for context, tour in made.made:
        if failed:
            _failure_screenshot(tour)
        context.close()
    if not failed:
        for _, tour in made.made:
            tour.assert_all_checked()


@pytest.fixture
def tour(tours: Tours) -> Tour:
    """The browser of the person in the test."""
    return tours.new()


def _failure_screenshot(tour: Tour) -> None:
    """Best effort: the page as it was when the test failed."""
    try:
        tour.folder.mkdir(parents=True, exist_ok=True)
        tour.page.screenshot(path=str(tour.folder / "zz-failure.png"), full_page=True)
    except Exception as error:
        print(f"no failure screenshot: {error}")


def _folder_name(test_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in test_name).strip("-")
