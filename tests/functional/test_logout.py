"""Signing out: our own "Sign out" and OpenID Connect RP-Initiated Logout 1.0 at /logout."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.test import TestResponse

from authserver.accounts.models import User
from authserver.clients.cache import load_client
from authserver.clients.models import Client
from authserver.extensions import db, utcnow
from authserver.keys import current_keyring
from authserver.oidc.id_token import create_id_token
from authserver.sessions.models import LoginSession
from authserver.sessions.services import COOKIE_NAME
from tests.factories import make_client, make_user
from tests.oauth_helpers import csrf_token, exchange, get_code, pkce_pair, sign_in

SIGNED_OUT_URI = "https://rp.example.com/signed-out"
OTHER_RP_URI = "https://other.example.com/signed-out"


def registered_client(**extra: Any) -> str:
    """A client with a registered post_logout_redirect_uri; its client_id."""
    extra.setdefault("post_logout_redirect_uris", [SIGNED_OUT_URI])
    client, _ = make_client(**extra)
    return client.client_id


def id_token_for(user: User, client_id: str) -> str:
    """An ID Token as the token endpoint issues it."""
    client = load_client(client_id)
    assert client is not None
    return create_id_token(client=client, user=user, scope="openid", auth_time=utcnow())


def crafted_id_token(app: Flask, **claims: Any) -> str:
    """An ID Token signed with our current key, with exactly these claims over the defaults."""
    now = int(utcnow().timestamp())
    values: dict[str, Any] = {
        "iss": app.config["AUTHSERVER"].issuer,
        "iat": now,
        "exp": now + 60,
    }
    values.update(claims)
    kid, key = current_keyring().signing_key("RS256")
    return jwt.encode({"alg": "RS256", "kid": kid, "typ": "JWT"}, values, key)


def session_is_live(browser: FlaskClient) -> bool:
    """Whether the browser's cookie still signs someone in."""
    return "You are not signed in." not in browser.get("/").text


def location(response: TestResponse) -> tuple[str, dict[str, list[str]]]:
    """A redirect's target without its query, and the query."""
    parts = urlsplit(response.headers["Location"])
    return parts._replace(query="").geturl(), parse_qs(parts.query)


def assert_error_page(response: TestResponse) -> None:
    """Section 4: an error page, no redirect, a way back."""
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert "This sign-out link does not work" in response.text
    assert 'href="/"' in response.text


# --- verified requests: sign out at once, then back to the relying party -------------


def test_valid_hint_and_registered_uri_sign_out_and_return_with_state(
    client: FlaskClient,
) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(user, client_id),
            "post_logout_redirect_uri": SIGNED_OUT_URI,
            "state": "af0ifjsldkj",
        },
    )

    assert response.status_code == 302
    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=af0ifjsldkj"
    assert client.get_cookie(COOKIE_NAME) is None
    assert db.session.query(LoginSession).one().revoked_at is not None
    assert not session_is_live(client)
    assert client.get("/account").status_code != 200


def test_the_old_cookie_no_longer_signs_in(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)
    cookie = client.get_cookie(COOKIE_NAME)
    assert cookie is not None

    client.get("/logout", query_string={"id_token_hint": id_token_for(user, client_id)})
    replay = app.test_client()
    replay.set_cookie(COOKIE_NAME, cookie.value)

    assert not session_is_live(replay)


def test_state_is_added_to_a_registered_uri_that_has_a_query(client: FlaskClient) -> None:
    user = make_user()
    uri = "https://rp.example.com/bye?lang=en"
    client_id = registered_client(post_logout_redirect_uris=[uri])
    sign_in(client)

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(user, client_id),
            "post_logout_redirect_uri": uri,
            "state": "a b&c",
        },
    )

    target, params = location(response)
    assert target == "https://rp.example.com/bye"
    assert params == {"lang": ["en"], "state": ["a b&c"]}


def test_without_post_logout_redirect_uri_the_signed_out_page_follows(
    client: FlaskClient,
) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)

    response = client.get("/logout", query_string={"id_token_hint": id_token_for(user, client_id)})

    assert response.status_code == 302
    assert response.headers["Location"] == "/logout/done"
    page = client.get("/logout/done")
    assert "You are signed out" in page.text
    assert 'href="/login"' in page.text
    assert not session_is_live(client)


def test_the_id_token_from_the_code_flow_is_a_valid_hint(client: FlaskClient) -> None:
    make_user()
    rp, secret = make_client(post_logout_redirect_uris=[SIGNED_OUT_URI])
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp.client_id, challenge)
    id_token = exchange(client, rp.client_id, secret, code, verifier).get_json()["id_token"]

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token,
            "client_id": rp.client_id,
            "post_logout_redirect_uri": SIGNED_OUT_URI,
            "state": "s1",
        },
    )

    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=s1"
    assert not session_is_live(client)


def test_an_expired_hint_is_accepted(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)
    now = int(utcnow().timestamp())
    expired = crafted_id_token(app, sub=user.sub, aud=client_id, iat=now - 3600, exp=now - 1800)

    response = client.get(
        "/logout",
        query_string={"id_token_hint": expired, "post_logout_redirect_uri": SIGNED_OUT_URI},
    )

    assert response.headers["Location"] == SIGNED_OUT_URI
    assert not session_is_live(client)


def test_the_relying_party_may_post_the_request(client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)

    # Section 2: form serialization, from the relying party's page: no CSRF token of ours.
    response = client.post(
        "/logout",
        data={
            "id_token_hint": id_token_for(user, client_id),
            "post_logout_redirect_uri": SIGNED_OUT_URI,
            "state": "posted",
        },
    )

    assert response.status_code == 303
    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=posted"
    assert not session_is_live(client)


def test_a_valid_hint_when_nobody_is_signed_in_still_returns(client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(user, client_id),
            "post_logout_redirect_uri": SIGNED_OUT_URI,
            "state": "x",
        },
    )

    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=x"


def test_azp_names_the_client_of_a_token_with_several_audiences(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)
    hint = crafted_id_token(app, sub=user.sub, aud=[client_id, "api"], azp=client_id)

    response = client.get(
        "/logout",
        query_string={"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT_URI},
    )

    assert response.headers["Location"] == SIGNED_OUT_URI


# --- requests that cannot be verified: ask first --------------------------------------


def test_without_a_hint_the_person_confirms_then_returns(client: FlaskClient) -> None:
    make_user()
    client_id = registered_client()
    sign_in(client)
    params = {"client_id": client_id, "post_logout_redirect_uri": SIGNED_OUT_URI, "state": "st"}

    page = client.get("/logout", query_string=params)

    assert page.status_code == 200
    assert "Sign out of authserver?" in page.text
    assert "Test RP" in page.text
    assert '<form method="post" action="/logout"' in page.text
    for name, value in params.items():
        assert f'<input type="hidden" name="{name}" value="{value}">' in page.text
    assert session_is_live(client)

    response = client.post(
        "/logout", data={**params, "csrf_token": csrf_token(page.text), "confirm": "yes"}
    )

    assert response.status_code == 303
    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=st"
    assert not session_is_live(client)


def test_confirming_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    make_user()
    client_id = registered_client()
    sign_in(client)
    params = {"client_id": client_id, "post_logout_redirect_uri": SIGNED_OUT_URI}

    response = client.post("/logout", data={**params, "confirm": "yes"})

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Sign in again" in response.text
    assert session_is_live(client)


def test_a_post_without_hint_or_token_only_asks(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    response = client.post("/logout")

    assert response.status_code == 200
    assert "Sign out of authserver?" in response.text
    assert session_is_live(client)


def test_a_hint_about_another_person_asks_first(client: FlaskClient) -> None:
    make_user()
    bob = make_user(email="bob@example.com", name="Bob")
    client_id = registered_client()
    sign_in(client)  # as Alice
    params = {
        "id_token_hint": id_token_for(bob, client_id),
        "post_logout_redirect_uri": SIGNED_OUT_URI,
    }

    page = client.get("/logout", query_string=params)

    assert page.status_code == 200
    assert "alice@example.com" in page.text
    assert session_is_live(client)
    response = client.post(
        "/logout", data={**params, "csrf_token": csrf_token(page.text), "confirm": "yes"}
    )
    assert response.headers["Location"] == SIGNED_OUT_URI
    assert not session_is_live(client)


def test_a_hint_older_than_any_live_session_asks_first(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)
    long_ago = int(utcnow().timestamp()) - app.config["AUTHSERVER"].session_ttl - 60
    hint = crafted_id_token(app, sub=user.sub, aud=client_id, iat=long_ago, exp=long_ago + 60)

    page = client.get("/logout", query_string={"id_token_hint": hint})

    assert page.status_code == 200
    assert "Sign out of authserver?" in page.text
    assert session_is_live(client)


def test_without_a_hint_and_signed_out_the_return_is_still_confirmed(
    client: FlaskClient,
) -> None:
    client_id = registered_client()
    params = {"client_id": client_id, "post_logout_redirect_uri": SIGNED_OUT_URI}

    page = client.get("/logout", query_string=params)

    assert page.status_code == 200
    assert "You are signed out of authserver" in page.text
    response = client.post(
        "/logout", data={**params, "csrf_token": csrf_token(page.text), "confirm": "yes"}
    )
    assert response.headers["Location"] == SIGNED_OUT_URI


# --- invalid requests: an error page, never a redirect ---------------------------------


def test_an_unregistered_post_logout_redirect_uri_is_refused(client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    sign_in(client)

    for uri in ("https://evil.example.com/", SIGNED_OUT_URI + "/", SIGNED_OUT_URI + "?x=1"):
        response = client.get(
            "/logout",
            query_string={
                "id_token_hint": id_token_for(user, client_id),
                "post_logout_redirect_uri": uri,
            },
        )
        assert_error_page(response)
        assert uri not in response.text
    assert session_is_live(client)


def test_a_uri_registered_for_another_client_is_refused(client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    registered_client(name="Other RP", post_logout_redirect_uris=[OTHER_RP_URI])
    sign_in(client)

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(user, client_id),
            "post_logout_redirect_uri": OTHER_RP_URI,
        },
    )

    assert_error_page(response)


def test_a_uri_two_clients_registered_without_hint_or_client_id_is_refused(
    client: FlaskClient,
) -> None:
    make_user()
    registered_client()
    registered_client(name="Another app with the same URI")
    sign_in(client)

    response = client.get("/logout", query_string={"post_logout_redirect_uri": SIGNED_OUT_URI})

    assert_error_page(response)
    assert "Sign out of authserver anyway" in response.text
    assert session_is_live(client)


def test_an_unregistered_uri_without_hint_or_client_id_is_refused(client: FlaskClient) -> None:
    registered_client()

    response = client.get("/logout", query_string={"post_logout_redirect_uri": OTHER_RP_URI})

    assert_error_page(response)


def test_a_uri_one_client_registered_names_it_without_hint_or_client_id(
    client: FlaskClient,
) -> None:
    """The request the issue reports: post_logout_redirect_uri and state, nothing else."""
    make_user()
    registered_client(name="Photo app")
    sign_in(client)
    params = {"post_logout_redirect_uri": SIGNED_OUT_URI, "state": "s-1"}

    page = client.get("/logout", query_string=params)

    assert page.status_code == 200
    assert "Sign out of authserver?" in page.text and "Photo app" in page.text
    assert session_is_live(client)
    response = client.post(
        "/logout", data={**params, "csrf_token": csrf_token(page.text), "confirm": "yes"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == SIGNED_OUT_URI + "?state=s-1"
    assert not session_is_live(client)


def test_a_uri_only_a_disabled_client_registered_names_nobody(
    app: Flask, client: FlaskClient
) -> None:
    client_id = registered_client()
    db.session.query(Client).filter_by(client_id=client_id).update({"is_active": False})
    db.session.commit()

    response = client.get("/logout", query_string={"post_logout_redirect_uri": SIGNED_OUT_URI})

    assert_error_page(response)


def test_a_confirmation_cannot_smuggle_an_unregistered_uri(client: FlaskClient) -> None:
    make_user()
    client_id = registered_client()
    sign_in(client)
    page = client.get("/logout", query_string={"client_id": client_id})

    response = client.post(
        "/logout",
        data={
            "client_id": client_id,
            "post_logout_redirect_uri": "https://evil.example.com/",
            "csrf_token": csrf_token(page.text),
            "confirm": "yes",
        },
    )

    assert_error_page(response)
    assert session_is_live(client)


def test_a_tampered_hint_is_refused(client: FlaskClient) -> None:
    user = make_user()
    bob = make_user(email="bob@example.com")
    client_id = registered_client()
    sign_in(client)
    header, payload, signature = id_token_for(bob, client_id).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = user.sub
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": f"{header}.{forged}.{signature}",
            "post_logout_redirect_uri": SIGNED_OUT_URI,
        },
    )

    assert_error_page(response)
    assert "Sign out of authserver anyway" in response.text
    assert session_is_live(client)


def test_hints_we_did_not_issue_are_refused(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    now = int(utcnow().timestamp())
    claims = {"iss": app.config["AUTHSERVER"].issuer, "sub": user.sub, "aud": client_id}
    claims.update(iat=now, exp=now + 60)
    kid, _ = current_keyring().signing_key("RS256")
    foreign = RSAKey.generate_key(2048)
    unsigned = ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
        for part in ({"alg": "none", "kid": kid}, claims)
    )
    hints = [
        jwt.encode({"alg": "RS256", "kid": kid}, claims, foreign),  # another key, our kid
        jwt.encode({"alg": "RS256", "kid": "unknown"}, claims, foreign),
        unsigned + ".",
        crafted_id_token(app, sub=user.sub, aud=client_id, iss="https://evil.example.com"),
        crafted_id_token(app, aud=client_id),  # no sub
        crafted_id_token(app, sub=user.sub),  # no aud
        "not-a-token",
        "a.b.c.d.e",
    ]

    for hint in hints:
        response = client.get(
            "/logout",
            query_string={"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT_URI},
        )
        assert_error_page(response)


def test_a_client_id_that_differs_from_the_hint_is_refused(client: FlaskClient) -> None:
    user = make_user()
    client_id = registered_client()
    other_id = registered_client(name="Other RP")
    sign_in(client)

    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(user, client_id),
            "client_id": other_id,
            "post_logout_redirect_uri": SIGNED_OUT_URI,
        },
    )

    assert_error_page(response)
    assert session_is_live(client)


def test_an_unknown_client_id_is_refused(client: FlaskClient) -> None:
    response = client.get("/logout", query_string={"client_id": "no-such-client"})

    assert_error_page(response)


def test_a_repeated_parameter_is_refused(client: FlaskClient) -> None:
    client_id = registered_client()

    response = client.get(
        "/logout?client_id=" + client_id + "&state=a&state=b",
    )

    assert_error_page(response)


def test_signing_out_anyway_from_the_error_page(client: FlaskClient) -> None:
    make_user()
    sign_in(client)
    page = client.get("/logout", query_string={"client_id": "no-such-client"})

    response = client.post("/logout", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})

    assert response.headers["Location"] == "/logout/done"
    assert not session_is_live(client)


# --- our own "Sign out" ----------------------------------------------------------------


def test_the_header_offers_account_and_sign_out_when_signed_in(client: FlaskClient) -> None:
    make_user()
    assert 'href="/login">Sign in</a>' in client.get("/").text
    sign_in(client)

    page = client.get("/").text

    assert 'href="/account">Account</a>' in page
    assert 'href="/logout">Sign out</a>' in page
    assert 'href="/login">Sign in</a>' not in page


def test_sign_out_asks_then_signs_out(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    page = client.get("/logout")
    assert "Sign out of authserver?" in page.text
    assert "alice@example.com" in page.text
    assert 'href="/">Stay signed in</a>' in page.text
    response = client.post("/logout", data={"csrf_token": csrf_token(page.text), "confirm": "yes"})

    assert response.status_code == 303
    assert response.headers["Location"] == "/logout/done"
    assert "You are signed out" in client.get("/logout/done").text
    assert not session_is_live(client)


def test_signed_out_visitors_are_told_so(client: FlaskClient) -> None:
    page = client.get("/logout")

    assert page.status_code == 200
    assert "You are signed out" in page.text


def test_the_signed_out_page_sends_signed_in_people_to_the_question(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    response = client.get("/logout/done")

    assert response.status_code == 303
    assert response.headers["Location"] == "/logout"


# --- whatever arrives: never a 5xx, never a redirect anywhere unregistered ----------------

parameter = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.sampled_from(["", SIGNED_OUT_URI, OTHER_RP_URI, "a.b.c", "x" * 3000]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    hint=st.one_of(st.none(), st.sampled_from(["valid", "other"]), st.text(max_size=60)),
    client_id=st.one_of(parameter, st.just("known")),
    uri=parameter,
    state=parameter,
    extra=st.dictionaries(
        st.sampled_from(["ui_locales", "logout_hint", "confirm"]), st.text(max_size=20)
    ),
    method=st.sampled_from(["GET", "POST"]),
)
def test_any_request_gets_a_page_or_a_registered_redirect(
    app: Flask,
    fuzz_world: tuple[FlaskClient, str, dict[str, str]],
    hint: str | None,
    client_id: str | None,
    uri: str | None,
    state: str | None,
    extra: dict[str, str],
    method: str,
) -> None:
    browser, known_client, hints = fuzz_world
    params: dict[str, str] = dict(extra)
    for name, value in (
        ("id_token_hint", hints.get(hint or "", hint)),
        ("client_id", known_client if client_id == "known" else client_id),
        ("post_logout_redirect_uri", uri),
        ("state", state),
    ):
        if value is not None:
            params[name] = value
    if method == "GET":
        response = browser.get("/logout", query_string=params)
    else:
        response = browser.post("/logout", data=params)

    assert response.status_code in (200, 302, 303, 400), response.status_code
    if response.status_code in (302, 303):
        target = response.headers["Location"].split("?")[0]
        assert target in (SIGNED_OUT_URI, "/logout/done")


@pytest.fixture
def fuzz_world(client: FlaskClient) -> tuple[FlaskClient, str, dict[str, str]]:
    """A signed-out browser, a registered client, and hints about two people."""
    alice = make_user()
    bob = make_user(email="bob@example.com")
    client_id = registered_client()
    hints = {"valid": id_token_for(alice, client_id), "other": id_token_for(bob, client_id)}
    return client, client_id, hints
