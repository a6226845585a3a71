"""examples/resource_server.py: the example API accepts a valid access token from the live
server and refuses expired, wrong-audience, wrong-scope and tampered ones (RFC 6750)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from examples.resource_server import create_api
from tests.browser.examples.helpers import token_for
from tests.browser.servers import LiveServer

OTHER_API = "https://other-api.example/"


@dataclass
class Api:
    url: str
    client_id: str
    secret: str

    def get(self, path: str, token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with requests.Session() as http:
            http.trust_env = False
            return http.get(self.url + path, headers=headers, timeout=10)


@pytest.fixture
def api(live: LiveServer, run_app: Any) -> Api:
    """The example API in its own thread, trusting the live server; and a client for tokens."""
    url = run_app(lambda _: create_api(live.url, live.url))
    client_id, secret = live.make_client(
        (),
        name="Notes reader",
        grant_types=("client_credentials",),
        scope="notes:read stats:read",
        auth_method="client_secret_basic",
        resources=[live.url, OTHER_API],
    )
    assert secret is not None
    return Api(url, client_id, secret)


def minted(live: LiveServer, **claims: Any) -> str:
    """An access token signed by the live server's own key, with some claims overridden."""
    from authserver.oauth.tokens import issue_access_token

    def issue() -> str:
        token, _ = issue_access_token(
            client_id="notes-cli",
            subject="someone",
            scope="notes:read",
            audience=live.url,
            grant_id=None,
            extra=claims,
        )
        return token

    return str(live.run(issue))


def challenge(response: requests.Response) -> str:
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["WWW-Authenticate"]


def test_a_valid_token_is_accepted(live: LiveServer, api: Api) -> None:
    token = token_for(live, api.client_id, api.secret, scope="notes:read")["access_token"]
    response = api.get("/notes", token)
    assert response.status_code == 200, response.text
    assert response.json()["owner"] == api.client_id


def test_no_token_gets_a_bare_challenge(api: Api) -> None:
    response = api.get("/notes", None)
    assert response.status_code == 401
    assert challenge(response) == 'Bearer realm="api"'
    assert api.get("/health", None).status_code == 200


def test_an_expired_token_is_refused(live: LiveServer, api: Api) -> None:
    now = int(time.time())
    response = api.get("/notes", minted(live, iat=now - 900, exp=now - 300))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert response.json()["error_description"] == "The token has expired."


def test_a_token_for_another_audience_is_refused(live: LiveServer, api: Api) -> None:
    body = token_for(live, api.client_id, api.secret, scope="notes:read", resource=OTHER_API)
    response = api.get("/notes", body["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert "audience" in response.json()["error_description"]


def test_a_token_without_the_scope_is_refused(live: LiveServer, api: Api) -> None:
    token = token_for(live, api.client_id, api.secret, scope="stats:read")["access_token"]
    response = api.get("/notes", token)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in challenge(response)
    assert 'scope="notes:read"' in challenge(response)


def test_a_tampered_token_is_refused(live: LiveServer, api: Api) -> None:
    token = token_for(live, api.client_id, api.secret, scope="stats:read")["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "notes:read"  # grant ourselves the scope
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = api.get("/notes", f"{header}.{forged}.{signature}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert api.get("/notes", token[:-4] + "AAAA").status_code == 401


def test_roles_are_checked(live: LiveServer, api: Api) -> None:
    assert api.get("/admin/stats", minted(live, roles=["viewer"])).status_code == 403
    assert api.get("/admin/stats", minted(live, roles=["admin"])).status_code == 200
