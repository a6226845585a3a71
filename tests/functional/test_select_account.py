"""`prompt=select_account` (OpenID Connect Core section 3.1.2.1): a real choice between
continuing as the signed-in person and signing in with another account."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from authserver.accounts.models import User
from authserver.core.secrets import hash_secret
from authserver.extensions import db
from authserver.oauth.models import AuthorizationCode
from authserver.oauth.reauth import SELECTED_PARAM
from tests.factories import PASSWORD, make_client, make_user
from tests.functional.test_reauthentication import authorize, sign_in_through
from tests.oauth_helpers import csrf_token, query, sign_in

HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def people(app: Flask) -> tuple[User, User, str]:
    """Alice, Bob and a first-party client (no consent page in the way)."""
    alice = make_user(name="Alice Liddell")
    bob = make_user("bob@example.com", name="Bob")
    rp, _ = make_client(skip_consent=True)
    return alice, bob, rp.client_id


def choose(browser: FlaskClient, page: TestResponse, choice: str, **override: str) -> TestResponse:
    """Press one of the account choice's buttons."""
    fields = [(html.unescape(k), html.unescape(v)) for k, v in HIDDEN_RE.findall(page.text)]
    data = dict(fields) | {"choice": choice} | override
    return browser.post("/authorize/account", data=data)


def person_of(code: str) -> int:
    row = db.session.scalar(
        select(AuthorizationCode).where(AuthorizationCode.code_hash == hash_secret(code))
    )
    assert row is not None
    return row.user_id


def test_a_signed_in_person_is_asked_which_account(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    sign_in(client)
    page = authorize(client, people[2], prompt="select_account")
    assert page.status_code == 200
    assert "Choose an account" in page.text
    assert "Continue as Alice Liddell" in page.text and "Use another account" in page.text
    assert csrf_token(page.text)
    # The pending request rides along in the form, without any marker of ours.
    fields = dict(HIDDEN_RE.findall(page.text))
    assert fields["state"] == "xyz-state" and fields["prompt"] == "select_account"
    assert SELECTED_PARAM not in fields


def test_continue_as_the_signed_in_person_gives_their_code(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    alice, _, client_id = people
    sign_in(client)
    page = authorize(client, client_id, prompt="select_account")
    back = choose(client, page, "continue")
    assert back.status_code == 302 and back.headers["Location"].startswith("/authorize?")
    answer = client.get(back.headers["Location"])
    params = query(answer)
    assert params["state"] == "xyz-state"
    assert person_of(params["code"]) == alice.id


def test_use_another_account_signs_in_and_replaces_the_session(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    _, bob, client_id = people
    sign_in(client)
    page = authorize(client, client_id, prompt="select_account", login_hint="alice@example.com")
    to_sign_in = choose(client, page, "another")
    location = to_sign_in.headers["Location"]
    # The sign-in page is shown although someone is signed in, and not filled in for them.
    args = dict(parse_qsl(urlsplit(location).query))
    assert location.startswith("/login?") and args["reauth"] == "1"
    assert "login_hint" not in args
    answer = sign_in_through(client, to_sign_in, email="bob@example.com")
    params = query(answer)
    assert person_of(params["code"]) == bob.id
    assert "bob@example.com" in client.get("/").text


def test_nobody_signed_in_gets_the_sign_in_page_and_no_second_question(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    alice, _, client_id = people
    response = authorize(client, client_id, prompt="select_account")
    assert response.headers["Location"].startswith("/login?")
    params = query(sign_in_through(client, response))
    assert person_of(params["code"]) == alice.id


def test_prompt_none_cannot_be_combined_with_select_account(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    sign_in(client)
    params = query(authorize(client, people[2], prompt="none select_account"))
    assert params["error"] == "invalid_request" and "code" not in params


@pytest.mark.parametrize(
    "tampered",
    [
        {"state": "another-state"},  # the marker was made for another request
        {SELECTED_PARAM: "forged"},
    ],
)
def test_a_marker_for_another_request_or_a_forged_one_asks_again(
    client: FlaskClient, people: tuple[User, User, str], tampered: dict[str, str]
) -> None:
    sign_in(client)
    page = authorize(client, people[2], prompt="select_account")
    back = choose(client, page, "continue")
    params = dict(parse_qsl(urlsplit(back.headers["Location"]).query)) | tampered
    again = client.get("/authorize", query_string=params)
    assert again.status_code == 200 and "Choose an account" in again.text


def test_the_marker_is_for_the_session_that_was_chosen(
    app: Flask, client: FlaskClient, people: tuple[User, User, str]
) -> None:
    """Chosen as Alice, then Bob signs in (another tab): the marker does not pick Bob."""
    sign_in(client)
    page = authorize(client, people[2], prompt="select_account")
    back = choose(client, page, "continue")
    login = client.get("/login?reauth=1")
    data = {"email": "bob@example.com", "password": PASSWORD, "csrf_token": csrf_token(login.text)}
    assert client.post("/login", data=data).status_code == 302
    again = client.get(back.headers["Location"])
    assert again.status_code == 200 and "Continue as Bob" in again.text


def test_the_choice_needs_the_csrf_token_and_a_known_button(
    client: FlaskClient, people: tuple[User, User, str]
) -> None:
    sign_in(client)
    page = authorize(client, people[2], prompt="select_account")
    forged = choose(client, page, "continue", csrf_token="forged")
    assert forged.status_code == 400 and "Location" not in forged.headers
    unknown = choose(client, page, "everyone")
    assert unknown.status_code == 400 and "Location" not in unknown.headers


def test_discovery_advertises_select_account(client: FlaskClient) -> None:
    document = client.get("/.well-known/openid-configuration").get_json()
    assert "select_account" in document["prompt_values_supported"]
