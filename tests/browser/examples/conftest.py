"""Each example against a live authserver on loopback; browsers from tests/browser."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

# The live server, chromium and the test certificate come from tests/browser/conftest.py.
from tests.browser.servers import run_in_thread, serve, stop

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "server(**settings): config overrides for the example test's live server"
    )


@pytest.fixture
def run_app() -> Iterator[Any]:
    """Serve Flask apps in threads for this test; `run_app(factory, host)` returns the URL.

    The factory gets the URL first, so an app can know its own address (redirect URIs).
    """
    running: list[Any] = []

    def start(factory: Any, host: str = "127.0.0.1") -> str:
        served: dict[str, Flask] = {}

        def late_bound(environ: dict[str, Any], start_response: Any) -> Any:
            return served["app"](environ, start_response)

        server, url = serve(late_bound)
        url = url.replace("127.0.0.1", host)
        served["app"] = factory(url)
        running.append((server, run_in_thread(server, f"example-{len(running)}")))
        return url

    yield start
    for server, thread in reversed(running):
        stop(server, thread)


@pytest.fixture
def clean_env() -> dict[str, str]:
    """The environment for example subprocesses: no proxy in the way of loopback calls."""
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env
