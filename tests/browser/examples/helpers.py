"""Helpers for the example tests."""

from __future__ import annotations

from typing import Any

from tests.browser.servers import LiveServer


def token_for(live: LiveServer, client_id: str, secret: str, **data: str) -> dict[str, Any]:
    """RFC 6749 section 4.4: a client credentials token from the live server."""
    response = live.http.post(
        f"{live.url}/oauth2/token",
        data={"grant_type": "client_credentials", **data},
        auth=(client_id, secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
