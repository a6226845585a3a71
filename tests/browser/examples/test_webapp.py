"""examples/webapp.py: a person signs in to the example web app through the live server
(code + PKCE, id_token checked against the JWKS), sees their claims, and signs out via
the end_session_endpoint."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from examples.webapp import create_webapp
from tests.browser.servers import LiveServer
from tests.factories import PASSWORD
from tests.functional.test_live_client import form_action, hidden_fields, ticked_fields


@pytest.fixture
def webapp(live: LiveServer, run_app: Any) -> str:
    """The example web app on its own port, registered as a confidential client."""

    def build(url: str) -> Any:
        client_id, secret = live.make_client(
            (f"{url}/callback",),
            name="Example web app",
            scope="openid profile email",
            post_logout_redirect_uris=[f"{url}/signed-out"],
        )
        assert secret is not None
        return create_webapp(live.url, client_id, secret)

    url: str = run_app(build)
    return url


def submit(browser: requests.Session, page: requests.Response, **fields: str) -> Any:
    """Post the page's form with its hidden fields (CSRF token, continuation), its ticked
    checkboxes (the consent page's scopes) and ours."""
    data = [*{**hidden_fields(page.text), **fields}.items(), *ticked_fields(page.text)]
    return browser.post(form_action(page.url, page.text), data=data, timeout=10)


def test_sign_in_shows_claims_and_sign_out_ends_the_session(live: LiveServer, webapp: str) -> None:
    live.make_user()
    browser = live.http

    page = browser.get(f"{webapp}/login", timeout=10)
    authorize = next(r for r in page.history if r.url.startswith(f"{live.url}/authorize"))
    params = parse_qs(urlsplit(authorize.url).query)
    assert params["code_challenge_method"] == ["S256"] and params["nonce"][0]
    assert 'name="password"' in page.text
    page = submit(browser, page, email="alice@example.com", password=PASSWORD)
    assert 'value="allow"' in page.text, "expected the consent page"
    page = submit(browser, page, decision="allow")

    assert page.url == f"{webapp}/"
    assert page.status_code == 200
    assert "Signed in as Alice Liddell" in page.text
    assert 'class="claim-email">alice@example.com<' in page.text
    assert 'class="claim-email_verified">True<' in page.text

    page = browser.get(f"{webapp}/logout", timeout=10)
    end_session = next(r for r in page.history if r.url.startswith(f"{live.url}/logout"))
    logout_params = parse_qs(urlsplit(end_session.url).query)
    assert logout_params["id_token_hint"][0].count(".") == 2
    assert logout_params["post_logout_redirect_uri"] == [f"{webapp}/signed-out"]
    assert page.url.startswith(f"{webapp}/signed-out?")
    assert "You are signed out." in page.text
    assert "Signed in as" not in browser.get(f"{webapp}/", timeout=10).text
    # The person's session at the server ended too: the next sign-in asks for the password.
    again = browser.get(f"{webapp}/login", timeout=10)
    assert 'name="password"' in again.text


def test_a_forged_callback_is_refused(live: LiveServer, webapp: str) -> None:
    response = live.http.get(f"{webapp}/callback?code=abc&state=forged", timeout=10)
    assert response.status_code == 400
    assert "Sign-in failed" in html.unescape(response.text)
