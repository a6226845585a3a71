"""OpenID Connect Front-Channel Logout 1.0: the sign-out page frames each relying party.

The browser test (tests/browser/test_logout.py) proves a real browser loads the frames;
these check the page, its query parameters and its Content-Security-Policy exactly.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import csrf_token, exchange, get_code, pkce_pair, sign_in

FRAME_RE = re.compile(r'<iframe src="([^"]+)" data-frontchannel-logout')
SIGNED_OUT = "https://rp.example.com/signed-out"


def tokens_for(
    browser: FlaskClient, client_id: str, secret: str | None, redirect_uri: str = REDIRECT_URI
) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, client_id, challenge, redirect_uri=redirect_uri)
    response = exchange(browser, client_id, secret, code, verifier, redirect_uri=redirect_uri)
    id_token = response.get_json()["id_token"]
    keys = KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())
    return {"id_token": id_token, **jwt.decode(id_token, keys).claims}


def frames(page_html: str) -> list[str]:
    return [html.unescape(src) for src in FRAME_RE.findall(page_html)]


def frame_src(csp: str) -> list[str]:
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    return directives["frame-src"].split()


def test_the_sign_out_page_frames_each_client_of_the_session_then_continues(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    needs_sid, secret = make_client(
        name="Photos",
        post_logout_redirect_uris=[SIGNED_OUT],
        frontchannel_logout_uri="https://rp.example.com/fcl",
        frontchannel_logout_session_required=True,
    )
    plain, plain_secret = make_client(
        name="Mail",
        redirect_uris=["https://mail.example.com/cb"],
        frontchannel_logout_uri="https://mail.example.com/logout?tenant=2",
    )
    silent, silent_secret = make_client(name="No front channel")
    sign_in(client)
    claims = tokens_for(client, needs_sid.client_id, secret)
    tokens_for(client, plain.client_id, plain_secret, "https://mail.example.com/cb")
    tokens_for(client, silent.client_id, silent_secret)

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": claims["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "st-9",
        },
    )

    assert response.status_code == 200
    framed = {urlsplit(uri).hostname: uri for uri in frames(response.text)}
    assert len(framed) == 2  # in no particular order
    parts = urlsplit(framed["rp.example.com"])
    assert parts._replace(query="").geturl() == "https://rp.example.com/fcl"
    assert parse_qs(parts.query) == {
        "iss": [app.config["AUTHSERVER"].issuer],
        "sid": [claims["sid"]],
    }
    assert framed["mail.example.com"] == "https://mail.example.com/logout?tenant=2"
    csp = response.headers["Content-Security-Policy"]
    assert sorted(frame_src(csp)) == [
        "https://mail.example.com/logout",
        "https://rp.example.com/fcl",
    ]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert f'href="{SIGNED_OUT}?state=st-9"' in response.text
    assert 'src="/static/js/frontchannel-logout.js"' in response.text
    assert "You are not signed in." in client.get("/").text


def test_our_own_sign_out_link_frames_them_too_and_continues_to_our_page(
    client: FlaskClient,
) -> None:
    make_user()
    rp, secret = make_client(frontchannel_logout_uri="https://rp.example.com/fcl")
    sign_in(client)
    tokens_for(client, rp.client_id, secret)
    page = client.get("/logout")

    response = client.post("/logout", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})

    assert response.status_code == 200
    assert frames(response.text) == ["https://rp.example.com/fcl"]
    assert 'href="/logout/done"' in response.text


def test_without_front_channel_clients_the_sign_out_redirects_as_before(
    client: FlaskClient,
) -> None:
    make_user()
    rp, secret = make_client(post_logout_redirect_uris=[SIGNED_OUT])
    make_client(name="Never used", frontchannel_logout_uri="https://rp.example.com/fcl")
    sign_in(client)
    claims = tokens_for(client, rp.client_id, secret)

    response = client.get(
        "/logout",
        query_string={"id_token_hint": claims["id_token"], "post_logout_redirect_uri": SIGNED_OUT},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == SIGNED_OUT
    assert "frame-src" not in response.headers.get("Content-Security-Policy", "")


def test_a_uri_cannot_end_the_frame_src_directive(client: FlaskClient) -> None:
    make_user()
    rp, secret = make_client(frontchannel_logout_uri="https://rp.example.com/a;script-src,*")
    sign_in(client)
    tokens_for(client, rp.client_id, secret)
    page = client.get("/logout")

    response = client.post("/logout", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})

    csp = response.headers["Content-Security-Policy"]
    assert frame_src(csp) == ["https://rp.example.com/a%3Bscript-src%2C*"]
    assert "script-src" not in dict(part.strip().split(" ", 1) for part in csp.split(";"))
