"""Drive the browser side of the code flow through the Flask test client."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.factories import PASSWORD, REDIRECT_URI

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 section 4.1 and 4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(
    browser: FlaskClient, email: str = "alice@example.com", password: str = PASSWORD
) -> None:
    page = browser.get("/login")
    response = browser.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 302, response.text


def query(response: TestResponse) -> dict[str, str]:
    """The parameters of a redirect's Location."""
    location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


FORM_POST_RE = re.compile(r'<form method="post" action="([^"]*)">')
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def form_post(response: TestResponse) -> tuple[str, dict[str, str]]:
    """OAuth 2.0 Form Post Response Mode: the form's action and its fields, as a browser
    would post them."""
    import html

    assert response.status_code == 200, response.text
    assert response.mimetype == "text/html"
    match = FORM_POST_RE.search(response.text)
    assert match, "no form on the page"
    fields = {html.unescape(k): html.unescape(v) for k, v in HIDDEN_RE.findall(response.text)}
    return html.unescape(match.group(1)), fields


def response_params(response: TestResponse) -> dict[str, str]:
    """The authorization response's parameters: a redirect's query, or a form_post's form."""
    if response.status_code == 302:
        return query(response)
    return form_post(response)[1]


def authorize_params(client_id: str, challenge: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": "xyz-state",
        "nonce": "n-0S6_WzA2Mj",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


# A checkbox a browser submits: ticked and not disabled.
TICKED_RE = re.compile(r'<input type="checkbox" name="([^"]+)" value="([^"]*)" checked>')


def ticked(html_text: str) -> list[tuple[str, str]]:
    """The (name, value) of every ticked, enabled checkbox of a page, as a browser posts them."""
    import html

    return [(html.unescape(k), html.unescape(v)) for k, v in TICKED_RE.findall(html_text)]


def consent(
    browser: FlaskClient,
    page: TestResponse,
    decision: str = "allow",
    granted: list[str] | None = None,
) -> TestResponse:
    """Submit the consent page's form as a person clicking Allow or Deny.

    The scopes stay ticked as the page offers them, unless `granted` says which to leave
    ticked.
    """
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    import html

    fields = {html.unescape(k): html.unescape(v) for k, v in fields.items()}
    fields["decision"] = decision
    boxes = ticked(page.text)
    if granted is not None:
        boxes = [(name, value) for name, value in boxes if value in granted]
    return browser.post("/authorize/decision", data=MultiDict([*fields.items(), *boxes]))


def get_code(
    browser: FlaskClient, client_id: str, challenge: str, **extra: Any
) -> tuple[str, dict[str, str]]:
    """Authorize (consenting if asked) and return (code, all redirect parameters)."""
    response = browser.get(
        "/authorize", query_string=authorize_params(client_id, challenge, **extra)
    )
    if response.status_code == 200 and 'name="decision"' in response.text:
        response = consent(browser, response)
    params = response_params(response)
    assert "code" in params, params
    return params["code"], params


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def exchange(
    browser: FlaskClient, client_id: str, secret: str | None, code: str, verifier: str, **extra: Any
) -> TestResponse:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": verifier,
        **extra,
    }
    headers = {}
    if secret is None:
        data["client_id"] = client_id
    else:
        headers = basic(client_id, secret)
    return browser.post("/oauth2/token", data=data, headers=headers)
