"""examples/backchannel_logout.py receives real logout tokens from a live server."""

from __future__ import annotations

import time
from typing import Any

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from examples.backchannel_logout import create_receiver
from tests.browser.servers import LiveServer
from tests.oauth_helpers import exchange, get_code, pkce_pair, sign_in


def test_the_example_verifies_a_logout_token_and_ends_the_local_session(
    live: LiveServer, run_app: Any
) -> None:
    ended: list[tuple[str | None, str | None]] = []
    registered: dict[str, Any] = {}

    def receiver(url: str) -> Any:
        client_id, secret = live.make_client(
            ("https://rp.example.com/callback",),
            backchannel_logout_uri=f"{url}/backchannel-logout",
        )
        registered.update(client_id=client_id, secret=secret)
        return create_receiver(live.url, client_id, lambda sid, sub: ended.append((sid, sub)))

    url = run_app(receiver)
    live.make_user()
    browser = live.app.test_client()
    with live.app.app_context():
        sign_in(browser)
        verifier, challenge = pkce_pair()
        code, _ = get_code(
            browser,
            registered["client_id"],
            challenge,
            redirect_uri="https://rp.example.com/callback",
        )
        tokens = exchange(
            browser,
            registered["client_id"],
            registered["secret"],
            code,
            verifier,
            redirect_uri="https://rp.example.com/callback",
        ).get_json()
        # An ID Token is not a logout token: the example refuses it.
        refused = requests.post(
            f"{url}/backchannel-logout", data={"logout_token": tokens["id_token"]}, timeout=10
        )
        assert refused.status_code == 400

        browser.get("/logout", query_string={"id_token_hint": tokens["id_token"]})

    deadline = time.monotonic() + 10
    while not ended and time.monotonic() < deadline:
        time.sleep(0.05)
    keys = KeySet.import_key_set(
        requests.get(f"{live.url}/.well-known/jwks.json", timeout=10).json()
    )
    id_token = jwt.decode(tokens["id_token"], keys).claims
    assert ended == [(id_token["sid"], id_token["sub"])]
