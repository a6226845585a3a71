"""Two-step verification through the pages: enrolment, the sign-in step, id_token amr and acr."""

from __future__ import annotations

import html
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from joserfc import jwt
from sqlalchemy import select, update

from authserver.accounts import totp
from authserver.accounts.models import User
from authserver.accounts.two_step import PENDING_KEY, PENDING_TTL
from authserver.extensions import db, utcnow
from authserver.keys import current_keyring
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user
from tests.oauth_helpers import csrf_token, exchange, get_code, pkce_pair

SECRET_RE = re.compile(r'<code class="totp-secret" id="totp-secret">([A-Z2-7 ]+)</code>')
RECOVERY_RE = re.compile(r"<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{2})</code></li>")


class Browser(FlaskClient):
    """A test client whose CSRF token is not cached on the test's shared `g`."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    return Browser(app, app.response_class, use_cookies=True)


def post_login(browser: FlaskClient, next_url: str = "/") -> Any:
    page = browser.get("/login", query_string={"next": next_url})
    return browser.post(
        "/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "next": next_url,
            "csrf_token": csrf_token(page.text),
        },
    )


def submit_code(browser: FlaskClient, code: str, method: str = "totp", next_url: str = "/") -> Any:
    """Fill in the code page as a person would, carrying `next` as the page does."""
    page = browser.get("/login/two-step", query_string={"method": method, "next": next_url})
    assert page.status_code == 200, page.status_code
    assert f'name="next" value="{html.escape(next_url)}"' in page.text
    data = {"code": code, "method": method, "next": next_url, "csrf_token": csrf_token(page.text)}
    return browser.post("/login/two-step", data=data)


def post_manage(browser: FlaskClient, path: str, **fields: str) -> Any:
    page = browser.get("/account/two-step")
    assert page.status_code == 200, page.status_code
    return browser.post(path, data={"csrf_token": csrf_token(page.text), **fields})


def next_code(user_id: int, secret: str) -> str:
    """A code the server has not seen yet: the next step after the last one it accepted."""
    last = db.session.scalar(select(User.totp_last_step).where(User.id == user_id))
    step = totp.current_step() if last is None else max(totp.current_step(), last + 1)
    assert step <= totp.current_step() + totp.TOTP_DRIFT_STEPS, "wait for the next step"
    return str(pyotp.TOTP(secret).generate_otp(step))


def enrol(browser: FlaskClient) -> tuple[User, str, list[str]]:
    """Sign in and turn two-step verification on through the pages."""
    user = make_user()
    assert post_login(browser).status_code == 302
    assert post_manage(browser, "/account/two-step/start").status_code == 302
    page = browser.get("/account/two-step")
    match = SECRET_RE.search(page.text)
    assert match, "the secret is shown for manual entry"
    secret = match.group(1).replace(" ", "")
    response = browser.post(
        "/account/two-step/confirm",
        data={"code": next_code(user.id, secret), "csrf_token": csrf_token(page.text)},
    )
    assert response.status_code == 200, response.text
    codes = RECOVERY_RE.findall(response.text)
    assert len(codes) == 10
    return user, secret, codes


def sign_out(browser: FlaskClient) -> None:
    page = browser.get("/logout")
    browser.post("/logout", data={"csrf_token": csrf_token(page.text)})
    assert browser.get("/account").status_code == 302


def is_signed_in(browser: FlaskClient) -> bool:
    return browser.get("/account").status_code == 200


def id_token_claims(browser: FlaskClient) -> dict[str, Any]:
    """Run the code flow in this (signed-in) browser and decode the id_token."""
    rp, secret = make_client(skip_consent=True)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    response = exchange(browser, rp.client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    raw = response.get_json()["id_token"]
    header = jwt.decode(raw, current_keyring().verification_key(_kid(raw)))
    return dict(header.claims)


def _kid(raw: str) -> str:
    import base64
    import json

    head = raw.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


# -- Enrolment ---------------------------------------------------------------------------


def test_enrolment_needs_a_sign_in(browser: FlaskClient) -> None:
    response = browser.get("/account/two-step")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/account/two-step")


def test_enrolment_needs_a_recent_sign_in(app: Flask, browser: FlaskClient) -> None:
    make_user()
    post_login(browser)
    db.session.execute(update(LoginSession).values(auth_time=utcnow() - timedelta(minutes=11)))
    db.session.commit()
    response = browser.get("/account/two-step")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?") and "reauth=1" in location
    assert "next=/account/two-step" in location


def test_enrolment_shows_a_qr_code_and_the_secret_then_turns_on(
    app: Flask, browser: FlaskClient
) -> None:
    user, secret, codes = enrol(browser)
    db.session.expire_all()
    assert totp.is_enabled(db.session.get(User, user.id))
    page = browser.get("/account/two-step")
    assert "Two-step verification is on" in page.text
    assert "<strong>10</strong> unused recovery codes" in page.text
    assert secret not in page.text.replace(" ", "")
    assert not any(code in page.text for code in codes), "recovery codes are shown once"


def test_the_qr_code_is_svg_without_inline_styles_and_never_cached(browser: FlaskClient) -> None:
    make_user()
    post_login(browser)
    assert browser.get("/account/two-step/qr.svg").status_code == 404
    post_manage(browser, "/account/two-step/start")
    page = browser.get("/account/two-step")
    assert 'src="/account/two-step/qr.svg"' in page.text
    response = browser.get("/account/two-step/qr.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.text.startswith("<svg") and "style" not in response.text.lower()


def test_the_secret_is_stored_encrypted(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    stored = db.session.scalar(select(User.totp_secret_encrypted).where(User.id == user.id))
    assert stored and secret not in stored and secret.lower() not in stored.lower()
    assert totp.decrypt_secret(stored) == secret


def test_confirming_with_a_wrong_code_fails(app: Flask, browser: FlaskClient) -> None:
    user = make_user()
    post_login(browser)
    post_manage(browser, "/account/two-step/start")
    secret = SECRET_RE.search(browser.get("/account/two-step").text).group(1)  # type: ignore[union-attr]
    wrong = pyotp.TOTP(secret.replace(" ", "")).generate_otp(totp.current_step() + 4)
    response = post_manage(browser, "/account/two-step/confirm", code=str(wrong))
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "not right" in response.text
    db.session.expire_all()
    assert not totp.is_enabled(db.session.get(User, user.id))


def test_the_forms_need_a_csrf_token(browser: FlaskClient) -> None:
    make_user()
    post_login(browser)
    assert browser.post("/account/two-step/start").status_code == 400
    assert browser.get("/account/two-step/qr.svg").status_code == 404


def test_the_pages_are_never_cached_and_cannot_be_framed(browser: FlaskClient) -> None:
    make_user()
    post_login(browser)
    response = browser.get("/account/two-step")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "style=" not in response.text and "<script" not in response.text


# -- The sign-in step --------------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_nobody_is_signed_in_meanwhile(
    app: Flask, browser: FlaskClient
) -> None:
    enrol(browser)
    sign_out(browser)
    response = post_login(browser, "/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login/two-step?next=/account"
    assert not is_signed_in(browser)
    rp, _ = make_client()
    _, challenge = pkce_pair()
    authorize = browser.get(
        "/authorize",
        query_string={
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": "https://rp.example.com/callback",
            "scope": "openid",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert authorize.status_code == 302
    assert authorize.headers["Location"].startswith("/login?")
    page = browser.get("/login/two-step")
    assert 'autocomplete="one-time-code"' in page.text
    assert 'inputmode="numeric"' in page.text
    assert 'href="/login/two-step?method=recovery&amp;next=/"' in page.text


def test_a_wrong_code_is_refused_and_the_right_one_signs_in(
    app: Flask, browser: FlaskClient
) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    post_login(browser, "/account")
    wrong = pyotp.TOTP(secret).generate_otp(totp.current_step() + 5)
    refused = submit_code(browser, str(wrong))
    assert refused.status_code == 422
    assert "That code is not right" in refused.text
    assert not is_signed_in(browser)
    accepted = submit_code(browser, next_code(user.id, secret), next_url="/account")
    assert accepted.status_code == 302
    assert accepted.headers["Location"] == "/account"
    assert is_signed_in(browser)
    with browser.session_transaction() as flow:
        assert PENDING_KEY not in flow


def test_a_replayed_code_is_refused(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    post_login(browser)
    code = next_code(user.id, secret)
    assert submit_code(browser, code).status_code == 302
    sign_out(browser)
    post_login(browser)
    assert submit_code(browser, code).status_code == 422
    assert not is_signed_in(browser)


def test_a_recovery_code_signs_in_once(app: Flask, browser: FlaskClient) -> None:
    _, _, codes = enrol(browser)
    sign_out(browser)
    post_login(browser)
    page = browser.get("/login/two-step?method=recovery")
    assert 'name="method" value="recovery"' in page.text
    assert submit_code(browser, codes[3], "recovery").status_code == 302
    assert is_signed_in(browser)
    session = db.session.scalars(select(LoginSession).where(LoginSession.revoked_at.is_(None)))
    assert session.one().amr == ["pwd", "mfa"]
    sign_out(browser)
    post_login(browser)
    assert submit_code(browser, codes[3], "recovery").status_code == 422
    assert not is_signed_in(browser)


def test_five_wrong_codes_go_back_to_the_password(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    post_login(browser, "/account")
    wrong = str(pyotp.TOTP(secret).generate_otp(totp.current_step() + 7))
    for _ in range(4):
        assert submit_code(browser, wrong, next_url="/account").status_code == 422
    last = submit_code(browser, wrong, next_url="/account")
    assert last.status_code == 302
    assert last.headers["Location"].startswith("/login?next=/account")
    token = csrf_token(browser.get("/login").text)
    response = browser.post(
        "/login/two-step", data={"code": next_code(user.id, secret), "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert not is_signed_in(browser)


def test_the_pending_sign_in_expires(app: Flask, browser: FlaskClient) -> None:
    enrol(browser)
    sign_out(browser)
    post_login(browser, "/account")
    with browser.session_transaction() as flow:
        flow[PENDING_KEY] = {**flow[PENDING_KEY], "at": int(time.time()) - PENDING_TTL - 1}
    page = browser.get("/login/two-step?next=/account")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=/account")
    with browser.session_transaction() as flow:
        assert PENDING_KEY not in flow
    assert not is_signed_in(browser)


def test_without_two_step_the_password_signs_in(app: Flask, browser: FlaskClient) -> None:
    make_user()
    response = post_login(browser, "/account")
    assert response.headers["Location"] == "/account"
    assert browser.get("/login/two-step").status_code == 302
    session = db.session.scalars(select(LoginSession)).one()
    assert (session.amr, session.acr) == (["pwd"], "1")


# -- Turning off -------------------------------------------------------------------------


def test_turning_off_needs_the_password(app: Flask, browser: FlaskClient) -> None:
    user, _, codes = enrol(browser)
    refused = post_manage(browser, "/account/two-step/disable", credential="wrong password")
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    db.session.expire_all()
    assert totp.is_enabled(db.session.get(User, user.id))
    done = post_manage(browser, "/account/two-step/disable", credential=PASSWORD)
    assert done.status_code == 302
    db.session.expire_all()
    assert not totp.is_enabled(db.session.get(User, user.id))
    sign_out(browser)
    assert post_login(browser, "/account").headers["Location"] == "/account"
    assert not totp.use_recovery_code(db.session.get(User, user.id), codes[0])


def test_turning_off_with_a_code_from_the_app(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    code = next_code(user.id, secret)
    assert post_manage(browser, "/account/two-step/disable", credential=code).status_code == 302
    db.session.expire_all()
    assert not totp.is_enabled(db.session.get(User, user.id))


def test_new_recovery_codes_are_shown_once_and_replace_the_old(
    app: Flask, browser: FlaskClient
) -> None:
    _, _, old = enrol(browser)
    response = post_manage(browser, "/account/two-step/recovery-codes")
    new = RECOVERY_RE.findall(response.text)
    assert len(new) == 10 and not set(new) & set(old)
    sign_out(browser)
    post_login(browser)
    assert submit_code(browser, old[0], "recovery").status_code == 422
    assert submit_code(browser, new[0], "recovery").status_code == 302


# -- amr and acr in the id_token ---------------------------------------------------------


def test_the_id_token_says_two_step_after_a_code(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    post_login(browser)
    assert submit_code(browser, next_code(user.id, secret)).status_code == 302
    claims = id_token_claims(browser)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "2"


def test_the_id_token_says_password_without_two_step(app: Flask, browser: FlaskClient) -> None:
    make_user()
    post_login(browser)
    claims = id_token_claims(browser)
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "1"


def test_the_sign_in_continues_the_authorization_request(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    rp, _ = make_client(skip_consent=True)
    _, challenge = pkce_pair()
    start = browser.get(
        "/authorize",
        query_string={
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": "https://rp.example.com/callback",
            "scope": "openid",
            "state": "s1",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    next_url = parse_qs(urlsplit(start.headers["Location"]).query)["next"][0]
    step = post_login(browser, next_url).headers["Location"]
    assert step.startswith("/login/two-step?next=")
    carried = parse_qs(urlsplit(step).query)["next"][0]
    assert carried == next_url
    done = submit_code(browser, next_code(user.id, secret), next_url=carried)
    assert done.headers["Location"].startswith("/authorize?")
    back = browser.get(done.headers["Location"])
    assert back.status_code == 302
    assert back.headers["Location"].startswith("https://rp.example.com/callback?code=")


def test_a_long_continuation_survives_the_second_step(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    long_next = "/account?" + "x" * 6000
    step = post_login(browser, long_next).headers["Location"]
    carried = parse_qs(urlsplit(step).query)["next"][0]
    done = submit_code(browser, next_code(user.id, secret), next_url=carried)
    assert done.headers["Location"] == long_next


def test_the_second_step_never_redirects_off_site(app: Flask, browser: FlaskClient) -> None:
    user, secret, _ = enrol(browser)
    sign_out(browser)
    post_login(browser)
    page = browser.get("/login/two-step")
    data = {
        "code": next_code(user.id, secret),
        "next": "//evil.example/steal",
        "csrf_token": csrf_token(page.text),
    }
    done = browser.post("/login/two-step", data=data)
    assert done.status_code == 302 and done.headers["Location"] == "/"
