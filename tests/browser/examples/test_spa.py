"""examples/spa: the single-page app signs a person in from the browser (code + PKCE as
a public client), keeps the tokens in memory only, and shows the example API's /notes;
CORS answers it on the token and userinfo endpoints, never on the authorization endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import pytest
import requests
from flask import Flask, jsonify, send_from_directory

from examples.resource_server import create_api
from tests.browser.servers import LiveServer
from tests.factories import PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SPA_DIR = Path(__file__).resolve().parents[3] / "examples" / "spa"
SCOPE = "openid profile notes:read"


def static_spa(config: dict[str, str]) -> Flask:
    """What `python -m http.server` would serve, plus the config.json for this run."""
    app = Flask(__name__, static_folder=None)

    @app.get("/")
    def index() -> Any:
        return send_from_directory(SPA_DIR, "index.html")

    @app.get("/config.json")
    def spa_config() -> Any:
        return jsonify(config)

    @app.get("/<path:name>")
    def asset(name: str) -> Any:
        return send_from_directory(SPA_DIR, name)

    return app


@pytest.fixture
def spa(live: LiveServer, run_app: Any) -> dict[str, str]:
    """The SPA on http://localhost:<port> (another origin than the server on 127.0.0.1)."""
    live.make_user()
    holder: dict[str, str] = {}
    config = {"issuer": live.url, "scope": SCOPE}

    def build(origin: str) -> Flask:
        client_id, _ = live.make_client(
            (f"{origin}/",),
            name="Example SPA",
            scope=SCOPE,
            auth_method="none",
            web_origins=[origin],
        )
        holder.update(origin=origin, client_id=client_id)
        config["client_id"] = client_id
        return static_spa(config)

    run_app(build, host="localhost")
    # config.json is rendered per request: the API's address is filled in once it runs.
    config["api"] = holder["api"] = run_app(
        lambda _: create_api(live.url, live.url, [holder["origin"]])
    )
    return holder


def cors_headers(response: requests.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def test_spa_signs_in_keeps_tokens_in_memory_and_shows_notes(
    live: LiveServer, browser: Browser, spa: dict[str, str]
) -> None:
    context = browser.new_context()
    page = context.new_page()
    tokens: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: tokens.append(r.json()) if r.url == f"{live.url}/oauth2/token" else None,
    )
    try:
        page.goto(f"{spa['origin']}/")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_label("E-mail").fill("alice@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Allow").click()

        page.locator("#notes li").first.wait_for()
        assert page.locator("#status").inner_text() == "Signed in."
        assert page.locator("#name").inner_text() == "Alice Liddell"
        sub = page.locator("#sub").inner_text()
        assert page.locator("#notes li").first.inner_text() == f"hello, {sub}"
        assert page.url == f"{spa['origin']}/", "the code stays out of the address bar"
        assert page.locator("#error").is_hidden()

        # Tokens in memory only: nothing in web storage or cookies; the verifier is gone.
        assert len(tokens) == 1
        access_token = tokens[0]["access_token"]
        stored = page.evaluate(
            "() => JSON.stringify([{...localStorage}, {...sessionStorage}, document.cookie])"
        )
        assert stored == '[{},{},""]'
        assert access_token not in str(context.cookies())

        # The browser itself may not read the authorization endpoint cross-origin.
        authorize = f"{live.url}/authorize?client_id={spa['client_id']}"
        blocked = page.evaluate(
            "(url) => fetch(url).then(() => 'read', () => 'blocked')", authorize
        )
        assert blocked == "blocked"

        page.get_by_role("button", name="Sign out").click()
        page.get_by_text("Signed out.").wait_for()
        userinfo = live.http.get(
            f"{live.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
        assert userinfo.status_code == 401, "sign-out revokes the access token"

        # A reload forgets everything: the tokens were only in memory.
        page.reload()
        page.get_by_text("Not signed in.").wait_for()
    finally:
        context.close()


def test_cors_preflight_is_answered_for_the_spa_origin_only(
    live: LiveServer, spa: dict[str, str]
) -> None:
    http = live.http
    preflight = {
        "Origin": spa["origin"],
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    for path in ("/userinfo", "/oauth2/token", "/oauth2/revoke"):
        response = http.options(f"{live.url}{path}", headers=preflight, timeout=10)
        assert response.status_code == 204
        assert cors_headers(response) == {
            "Access-Control-Allow-Origin": spa["origin"],
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        }
    api = http.options(f"{spa['api']}/notes", headers=preflight, timeout=10)
    assert api.headers["Access-Control-Allow-Origin"] == spa["origin"]
    assert "Authorization" in api.headers["Access-Control-Allow-Headers"]

    query = urlencode({"client_id": spa["client_id"], "response_type": "code"})
    for method in ("GET", "OPTIONS"):
        response = http.request(
            method, f"{live.url}/authorize?{query}", headers=preflight, timeout=10
        )
        assert cors_headers(response) == {}, method
    stranger = {**preflight, "Origin": "http://evil.localhost:1"}
    response = http.options(f"{live.url}/userinfo", headers=stranger, timeout=10)
    assert cors_headers(response) == {}
