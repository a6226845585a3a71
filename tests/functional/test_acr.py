"""Requested sign-in levels (`acr_values`, an essential `acr` claim): step up or fail, never a
code that says less than was asked (OpenID Connect Core sections 3.1.2.1 and 5.5.1.1)."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user
from tests.functional.test_two_step import (
    Browser,
    enrol,
    next_code,
    post_login,
    submit_code,
)
from tests.functional.test_what_a_client_receives import claims_of
from tests.oauth_helpers import authorize_params, csrf_token, exchange, pkce_pair, query

ESSENTIAL_2 = json.dumps({"id_token": {"acr": {"essential": True, "values": ["2"]}}})
# Two ways of asking for the second factor.
ASK_FOR_TWO = [{"acr_values": "2"}, {"claims": ESSENTIAL_2}]


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return Browser(app, app.response_class, use_cookies=True)


def authorize(browser: FlaskClient, client_id: str, challenge: str, **extra: Any) -> TestResponse:
    return browser.get(
        "/authorize", query_string=authorize_params(client_id, challenge, scope="openid", **extra)
    )


def sign_in_again(browser: FlaskClient, response: TestResponse) -> TestResponse:
    """Follow a sign-in redirect and enter the password; the answer of the login form."""
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")
    page = browser.get(response.headers["Location"])
    assert 'name="password"' in page.text, "no sign-in form"
    next_url = re.search(r'name="next" value="([^"]*)"', page.text)
    assert next_url
    return browser.post(
        "/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
            "next": html.unescape(next_url.group(1)),
        },
    )


@pytest.mark.parametrize("asked", ASK_FOR_TWO)
def test_without_a_second_factor_the_answer_is_unmet_authentication_requirements(
    app: Flask, browser: FlaskClient, asked: dict[str, str]
) -> None:
    make_user()
    rp, _ = make_client(skip_consent=True)
    post_login(browser)
    _, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, **asked)
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    got = query(response)
    assert got["error"] == "unmet_authentication_requirements" and "code" not in got
    assert got["state"] == "xyz-state"


@pytest.mark.parametrize("asked", ASK_FOR_TWO)
def test_a_password_session_of_a_person_with_a_second_factor_steps_up(
    app: Flask, browser: FlaskClient, asked: dict[str, str]
) -> None:
    user, secret, _ = enrol(browser)  # signed in with the password, then turned TOTP on
    rp, rp_secret = make_client(skip_consent=True)
    verifier, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, **asked)
    assert "reauth=1" in response.headers["Location"], "no step-up"
    step = sign_in_again(browser, response)
    assert step.headers["Location"].startswith("/login/two-step?next=")
    carried = parse_qs(urlsplit(step.headers["Location"]).query)["next"][0]
    done = submit_code(browser, next_code(user.id, secret), next_url=carried)
    back = browser.get(done.headers["Location"])
    assert back.status_code == 302, back.text
    code = query(back)["code"]
    body = exchange(browser, rp.client_id, rp_secret, code, verifier).get_json()
    id_token = claims_of(browser, body["id_token"])
    assert id_token["acr"] == "2"
    assert "otp" in id_token["amr"]


def test_with_prompt_none_a_needed_step_up_is_interaction_required(
    app: Flask, browser: FlaskClient
) -> None:
    enrol(browser)
    rp, _ = make_client(skip_consent=True)
    _, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, acr_values="2", prompt="none")
    assert query(response)["error"] == "interaction_required"


def test_with_prompt_none_and_no_second_factor_it_is_unmet(
    app: Flask, browser: FlaskClient
) -> None:
    make_user()
    rp, _ = make_client(skip_consent=True)
    post_login(browser)
    _, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, acr_values="2", prompt="none")
    assert query(response)["error"] == "unmet_authentication_requirements"


def test_a_second_factor_turned_off_during_the_step_up_fails_the_request(
    app: Flask, browser: FlaskClient
) -> None:
    from authserver.accounts import totp
    from authserver.extensions import db

    user, _, _ = enrol(browser)
    rp, _ = make_client(skip_consent=True)
    _, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, acr_values="2")
    user.totp_enabled_at = None  # turned off in another tab meanwhile
    db.session.commit()
    assert not totp.is_enabled(user)
    back = sign_in_again(browser, response)
    answer = browser.get(back.headers["Location"])
    assert query(answer)["error"] == "unmet_authentication_requirements"


def test_an_essential_acr_nobody_can_give_fails_before_signing_in(
    app: Flask, browser: FlaskClient
) -> None:
    make_user()
    rp, _ = make_client(skip_consent=True)
    _, challenge = pkce_pair()
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:gold"]}}})
    response = authorize(browser, rp.client_id, challenge, claims=claims)
    assert query(response)["error"] == "unmet_authentication_requirements"


@pytest.mark.parametrize(
    "asked",
    [
        {"acr_values": "urn:mace:incommon:iap:silver"},
        {"acr_values": "1 2"},
        {"acr_values": "1"},
        {"claims": json.dumps({"id_token": {"acr": {"values": ["urn:gold"]}}})},
        {"claims": json.dumps({"id_token": {"acr": {"essential": True}}})},
        {"claims": json.dumps({"id_token": {"acr": {"essential": True, "value": "1"}}})},
    ],
)
def test_a_password_meets_a_request_it_satisfies_or_that_names_no_level_of_ours(
    app: Flask, browser: FlaskClient, asked: dict[str, str]
) -> None:
    make_user()
    rp, rp_secret = make_client(skip_consent=True)
    post_login(browser)
    verifier, challenge = pkce_pair()
    response = authorize(browser, rp.client_id, challenge, **asked)
    code = query(response)["code"]
    body = exchange(browser, rp.client_id, rp_secret, code, verifier).get_json()
    assert claims_of(browser, body["id_token"])["acr"] == "1"
