"""Signing in again: `id_token_hint` (at /authorize and /logout), `prompt=login`/`max_age` and
the marker that says "this request's sign-in happened", bound to the browser and the request."""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws, jwt
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from authserver.accounts.models import User
from authserver.clients.cache import load_client
from authserver.extensions import utcnow
from authserver.keys import current_keyring
from authserver.oauth.reauth import REAUTH_PARAM
from authserver.oauth.tokens import issue_access_token
from authserver.oidc.id_token import create_id_token
from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import authorize_params, csrf_token, pkce_pair, query, sign_in

SIGNED_OUT_URI = "https://rp.example.com/signed-out"


def id_token_for(user: User, client_id: str, **extra: Any) -> str:
    """An ID Token as the token endpoint issues it."""
    client = load_client(client_id)
    assert client is not None
    return create_id_token(client=client, user=user, scope="openid", auth_time=utcnow(), **extra)


def authorize(browser: FlaskClient, client_id: str, **extra: Any) -> TestResponse:
    _, challenge = pkce_pair()
    params = authorize_params(client_id, challenge, scope="openid", **extra)
    return browser.get("/authorize", query_string=params)


def sign_in_through(
    browser: FlaskClient, response: TestResponse, email: str = "alice@example.com"
) -> TestResponse:
    """Follow a sign-in redirect as `email`, then come back: the authorization answer."""
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith("/login?"), response.headers["Location"]
    page = browser.get(response.headers["Location"])
    next_url = re.search(r'name="next" value="([^"]*)"', page.text)
    assert next_url
    back = browser.post(
        "/login",
        data={
            "email": email,
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": html.unescape(next_url.group(1)),
        },
    )
    assert back.status_code == 302 and back.headers["Location"].startswith("/authorize?")
    return browser.get(back.headers["Location"])


@pytest.fixture
def people(app: Flask) -> tuple[User, User, str]:
    """Alice, Bob and a first-party client that registered a post-logout URI."""
    alice = make_user()
    bob = make_user("bob@example.com", name="Bob")
    rp, _ = make_client(skip_consent=True, post_logout_redirect_uris=[SIGNED_OUT_URI])
    return alice, bob, rp.client_id


# id_token_hint at /authorize (OpenID Connect Core section 3.1.2.1)


def test_a_hint_about_bob_while_alice_is_signed_in_asks_to_sign_in(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    _, bob, client_id = people
    sign_in(client)
    response = authorize(client, client_id, id_token_hint=id_token_for(bob, client_id))
    assert response.headers["Location"].startswith("/login?")
    assert "reauth=1" in response.headers["Location"]
    # Signing in as Bob there gives Bob's code.
    answer = sign_in_through(client, response, "bob@example.com")
    assert answer.headers["Location"].startswith(REDIRECT_URI + "?code=")


def test_signing_in_as_someone_else_than_the_hint_is_login_required(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    _, bob, client_id = people
    sign_in(client)
    response = authorize(client, client_id, id_token_hint=id_token_for(bob, client_id))
    answer = sign_in_through(client, response, "alice@example.com")
    got = query(answer)
    assert got["error"] == "login_required" and "code" not in got


def test_with_prompt_none_a_hint_about_someone_else_is_login_required(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    alice, bob, client_id = people
    sign_in(client)
    hinted_bob = authorize(
        client, client_id, id_token_hint=id_token_for(bob, client_id), prompt="none"
    )
    assert query(hinted_bob)["error"] == "login_required"
    hinted_alice = authorize(
        client, client_id, id_token_hint=id_token_for(alice, client_id), prompt="none"
    )
    assert "code" in query(hinted_alice)


def test_an_expired_hint_about_the_signed_in_person_is_fine(
    app: Flask, client: FlaskClient, people: tuple[User, User, str]
) -> None:
    alice, _, client_id = people
    sign_in(client)
    hint = crafted(app, sub=alice.sub, aud=client_id, exp=int(utcnow().timestamp()) - 3600)
    assert "code" in query(authorize(client, client_id, id_token_hint=hint, prompt="none"))


def crafted(app: Flask, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token signed with our current key: these claims over an ID Token's defaults."""
    now = int(utcnow().timestamp())
    values: dict[str, Any] = {"iss": app.config["AUTHSERVER"].issuer, "iat": now, "exp": now + 60}
    values.update(claims)
    kid, key = current_keyring().signing_key("RS256")
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT", **(header or {})}, values, key)


def bad_hints(app: Flask, alice: User, client_id: str) -> dict[str, str]:
    """Hints that are not an ID Token we issued to `client_id`, about Alice."""
    kid, key = current_keyring().signing_key("RS256")
    claims = {"iss": app.config["AUTHSERVER"].issuer, "sub": alice.sub, "aud": client_id}
    good = id_token_for(alice, client_id)
    head, payload, signature = good.split(".")
    forged_payload = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_payload["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(forged_payload).encode()).rstrip(b"=").decode()
    access_token, _ = issue_access_token(
        client_id=client_id, subject=alice.sub, scope="openid", audience=client_id, grant_id=None
    )
    other, _ = make_client(name="Other RP")
    return {
        "access token": access_token,
        "access token typ on ID Token claims": crafted(
            app, {"typ": "at+jwt"}, sub=alice.sub, aud=client_id
        ),
        "no typ": jws.serialize_compact(
            {"alg": "RS256", "kid": kid}, json.dumps(claims).encode(), key
        ),
        "tampered": f"{head}.{forged}.{signature}",
        "foreign key, our kid": jwt.encode(
            {"alg": "RS256", "kid": kid, "typ": "JWT"}, claims, RSAKey.generate_key(2048)
        ),
        "another issuer": crafted(app, sub=alice.sub, aud=client_id, iss="https://evil.example"),
        "no sub": crafted(app, aud=client_id),
        "no aud": crafted(app, sub=alice.sub),
        "not a JWT": "not-a-token",
        "a JWE": "a.b.c.d.e",
        "issued to another client": id_token_for(alice, other.client_id),
    }


def test_a_hint_that_is_not_our_id_token_for_this_client_is_invalid_request(
    app: Flask, client: FlaskClient, people: tuple[User, User, str]
) -> None:
    alice, _, client_id = people
    sign_in(client)
    for name, hint in bad_hints(app, alice, client_id).items():
        response = authorize(client, client_id, id_token_hint=hint)
        assert response.headers["Location"].startswith(REDIRECT_URI + "?"), name
        got = query(response)
        assert got["error"] == "invalid_request" and "code" not in got, name


def test_the_same_hints_are_refused_at_logout(
    app: Flask, client: FlaskClient, people: tuple[User, User, str]
) -> None:
    """RP-Initiated Logout section 2: /logout verifies hints with the same function."""
    alice, _, client_id = people
    sign_in(client)
    for name, hint in bad_hints(app, alice, client_id).items():
        if name == "issued to another client":
            continue  # a real ID Token: logout then checks the client (tests/test_logout.py)
        response = client.get(
            "/logout",
            query_string={"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT_URI},
        )
        assert response.status_code == 400, name
        assert "Location" not in response.headers, name
    assert "You are not signed in." not in client.get("/").text


def test_an_access_token_does_not_sign_out_without_asking(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    """The access token of a client that is its own resource server names the client in
    `aud` and the person in `sub`, like an ID Token would: its `typ` says what it is."""
    alice, _, client_id = people
    sign_in(client)
    access_token, _ = issue_access_token(
        client_id=client_id, subject=alice.sub, scope="openid", audience=client_id, grant_id=None
    )
    response = client.get(
        "/logout",
        query_string={"id_token_hint": access_token, "post_logout_redirect_uri": SIGNED_OUT_URI},
    )
    assert response.status_code == 400
    assert "You are not signed in." not in client.get("/").text


# The re-authentication marker: this browser, this request


def marker_of(response: TestResponse) -> tuple[str, str]:
    """(continuation URL, marker) of a sign-in redirect."""
    next_url = parse_qs(urlsplit(response.headers["Location"]).query)["next"][0]
    return next_url, parse_qs(urlsplit(next_url).query)[REAUTH_PARAM][0]


@pytest.mark.parametrize("asks", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_marker_from_another_request_does_not_satisfy_this_one(
    app: Flask,
    client: FlaskClient,
    people: tuple[User, User, str],
    monkeypatch: pytest.MonkeyPatch,
    asks: dict[str, str],
) -> None:
    _, _, client_id = people
    sign_in(client)
    first = authorize(client, client_id, prompt="login", state="first")
    _, marker = marker_of(first)
    assert "code" in query(sign_in_through(client, first))  # the sign-in it asked for happened
    later(monkeypatch, seconds=5)  # max_age=0: the session is now older than that
    reused = authorize(client, client_id, state="second", **asks, **{REAUTH_PARAM: marker})
    assert reused.headers["Location"].startswith("/login?"), "another request's marker counted"


@pytest.mark.parametrize("asks", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_marker_from_another_browser_does_not_satisfy_the_same_request(
    app: Flask,
    client: FlaskClient,
    people: tuple[User, User, str],
    monkeypatch: pytest.MonkeyPatch,
    asks: dict[str, str],
) -> None:
    _, _, client_id = people
    other = app.test_client()
    # Another browser starts the very request and gets sent to sign in, with a marker.
    continuation, _ = marker_of(authorize(other, client_id, **asks))
    sign_in(client)  # this browser signs in after the marker was made
    later(monkeypatch, seconds=5)
    copied = client.get(continuation)
    assert copied.headers["Location"].startswith("/login?"), "another browser's marker counted"


def test_the_marker_of_this_request_in_this_browser_is_honoured(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    _, _, client_id = people
    sign_in(client)
    # (prompt=select_account's "Use another account": tests/functional/test_select_account.py)
    response = authorize(client, client_id, prompt="login")
    assert response.headers["Location"].startswith("/login?")
    assert "code" in query(sign_in_through(client, response))


def later(monkeypatch: pytest.MonkeyPatch, seconds: int) -> None:
    """Move the sessions' clock forward, so existing sign-ins look `seconds` older."""
    import authserver.sessions.services as sessions

    now = utcnow() + timedelta(seconds=seconds)
    monkeypatch.setattr(sessions, "utcnow", lambda: now)


def test_prompt_login_then_the_organization_picker_does_not_ask_to_sign_in_again(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    """The picker adds `organization` to the request: the marker stays valid for it."""
    from authserver.orgs.membership import add_member
    from authserver.orgs.services import create_organization

    alice, _, _ = people
    for name in ("Acme", "Beta"):
        add_member(create_organization(name), alice, "viewer")
    rp, _ = make_client(scope="openid org:*", skip_consent=True)
    sign_in(client)
    response = authorize(client, rp.client_id, prompt="login", organization="select")
    picker = sign_in_through(client, response)
    assert picker.status_code == 200 and "Choose an organization" in picker.text
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', picker.text)
    data = {html.unescape(k): html.unescape(v) for k, v in fields}
    answer = client.post("/authorize", data={**data, "organization": "beta"})
    assert answer.headers["Location"].startswith(REDIRECT_URI + "?code="), answer.headers
