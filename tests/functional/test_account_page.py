"""The account page: profile, password, sessions and connected apps, through the test client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import select

from authserver.accounts.models import AccountToken, User
from authserver.accounts.passwords import verify_password
from authserver.extensions import db
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, query, sign_in

CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
)
NEW_PASSWORD = "a brand new passphrase"
SESSION_REF_RE = re.compile(r'name="session" value="([0-9a-f]{16})"')


class Browser(FlaskClient):
    """A test client for one of several browsers driven by the same test.

    Flask-WTF caches the CSRF token on `g`, which the test's app context shares across
    requests; forgetting it gives each browser a token bound to its own session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        g.pop("csrf_token", None)
        return super().open(*args, **kwargs)


def browser(app: Flask, user_agent: str = CHROME_ON_LINUX, ip: str = "127.0.0.1") -> FlaskClient:
    """A test client that presents itself as a given browser from a given address."""
    test_client = Browser(app, app.response_class, use_cookies=True)
    test_client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    return test_client


def account_page(test_client: FlaskClient) -> str:
    response = test_client.get("/account")
    assert response.status_code == 200, response.status_code
    return response.text


def post_form(test_client: FlaskClient, path: str, **fields: str) -> Any:
    """POST a form of the account page with the CSRF token read from the page."""
    token = csrf_token(account_page(test_client))
    return test_client.post(path, data={"csrf_token": token, **fields})


def is_signed_in(test_client: FlaskClient) -> bool:
    return test_client.get("/account").status_code == 200


def user_tokens(test_client: FlaskClient, rp: Any, secret: str | None) -> dict[str, Any]:
    """Run the code flow in this browser (consenting if asked) and return the token response."""
    verifier, challenge = pkce_pair()
    code, _ = get_code(test_client, rp.client_id, challenge)
    response = exchange(test_client, rp.client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    return body


def refresh(test_client: FlaskClient, rp: Any, secret: str, token: str) -> Any:
    return test_client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token},
        headers=basic(rp.client_id, secret),
    )


def introspect(test_client: FlaskClient, rp: Any, secret: str, token: str) -> dict[str, Any]:
    response = test_client.post(
        "/oauth2/introspect", data={"token": token}, headers=basic(rp.client_id, secret)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    return body


def test_signed_out_visitor_is_sent_to_sign_in(app: Flask) -> None:
    response = browser(app).get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?")
    assert query(response) == {"next": "/account"}
    assert response.headers["Cache-Control"] == "no-store"


def test_sign_in_from_the_redirect_comes_back_to_the_account_page(app: Flask) -> None:
    make_user()
    client = browser(app)
    page = client.get("/login?next=/account")
    response = client.post(
        "/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "next": "/account",
            "csrf_token": csrf_token(page.text),
        },
    )
    assert response.headers["Location"] == "/account"


def test_account_page_shows_the_profile_and_is_never_cached(app: Flask) -> None:
    make_user(name="Alice Liddell", email_verified=False)
    alice = browser(app)
    sign_in(alice)
    response = alice.get("/account")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert 'value="Alice Liddell"' in response.text
    assert "alice@example.com" in response.text
    assert "Not verified" in response.text
    assert 'href="/account/two-step"' in response.text
    assert "<script" not in response.text and "style=" not in response.text


def test_rename(app: Flask) -> None:
    user = make_user(name="Alice Liddell")
    alice = browser(app)
    sign_in(alice)
    response = post_form(alice, "/account/name", name="  Alice   Pleasance Liddell ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    db.session.refresh(user)
    assert user.name == "Alice Pleasance Liddell"
    page = account_page(alice)
    assert 'value="Alice Pleasance Liddell"' in page
    assert "Your name was saved." in page


def test_too_long_a_name_is_refused_next_to_the_field(app: Flask) -> None:
    user = make_user(name="Alice Liddell")
    alice = browser(app)
    sign_in(alice)
    response = post_form(alice, "/account/name", name="x" * 201)
    assert response.status_code == 422
    assert 'id="name-error"' in response.text
    assert 'aria-describedby="name-error"' in response.text
    db.session.refresh(user)
    assert user.name == "Alice Liddell"


def test_wrong_current_password_is_refused(app: Flask) -> None:
    user = make_user()
    old_hash = user.password_hash
    alice = browser(app)
    sign_in(alice)
    response = post_form(
        alice,
        "/account/password",
        current_password="not my password",
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )
    assert response.status_code == 422
    assert 'id="current_password-error">Your current password is not correct.' in response.text
    assert 'aria-describedby="current_password-error"' in response.text
    db.session.refresh(user)
    assert user.password_hash == old_hash
    assert user.password_changed_at is None


def test_new_passwords_that_differ_are_refused(app: Flask) -> None:
    user = make_user()
    alice = browser(app)
    sign_in(alice)
    response = post_form(
        alice,
        "/account/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD + "!",
    )
    assert response.status_code == 422
    assert 'id="confirm_password-error"' in response.text
    db.session.refresh(user)
    assert verify_password(user.password_hash, PASSWORD)


def test_password_change_ends_other_sessions_and_revokes_refresh_tokens(app: Flask) -> None:
    user = make_user()
    rp, secret = make_client()
    assert secret is not None
    alice = browser(app)
    laptop = browser(app, FIREFOX_ON_WINDOWS, "198.51.100.7")
    sign_in(alice)
    sign_in(laptop)
    tokens = user_tokens(laptop, rp, secret)

    response = post_form(
        alice,
        "/account/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        confirm_password=NEW_PASSWORD,
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    assert is_signed_in(alice)
    assert not is_signed_in(laptop)
    db.session.refresh(user)
    assert user.password_changed_at is not None
    assert verify_password(user.password_hash, NEW_PASSWORD)
    refreshed = refresh(alice, rp, secret, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.get_json()["error"] == "invalid_grant"
    assert introspect(alice, rp, secret, tokens["access_token"]) == {"active": False}
    sign_in(browser(app), password=NEW_PASSWORD)


def test_sessions_list_shows_every_session_with_its_device(app: Flask) -> None:
    make_user()
    alice = browser(app, CHROME_ON_LINUX, "203.0.113.5")
    laptop = browser(app, FIREFOX_ON_WINDOWS, "198.51.100.7")
    sign_in(alice)
    sign_in(laptop)
    page = account_page(alice)
    assert "Chrome on Linux" in page
    assert "Firefox on Windows" in page
    assert "203.0.113.5" in page and "198.51.100.7" in page
    assert page.count("This device") == 1
    assert len(SESSION_REF_RE.findall(page)) == 2
    for login_session in db.session.scalars(select(LoginSession)):
        assert login_session.id not in page


def _reference_of(page: str, device: str) -> str:
    """The sign-out reference of the session listed with this device description."""
    for item in page.split('<li class="item">')[1:]:
        if device in item:
            match = SESSION_REF_RE.search(item)
            assert match
            return match.group(1)
    raise AssertionError(f"{device} not listed")


def test_signing_out_another_session(app: Flask) -> None:
    make_user()
    alice = browser(app, CHROME_ON_LINUX)
    laptop = browser(app, FIREFOX_ON_WINDOWS)
    sign_in(alice)
    sign_in(laptop)
    reference = _reference_of(account_page(alice), "Firefox on Windows")
    response = post_form(alice, "/account/sessions/sign-out", session=reference)
    assert response.status_code == 302
    assert not is_signed_in(laptop)
    assert is_signed_in(alice)
    page = account_page(alice)
    assert "Firefox on Windows" not in page.split('id="sessions"')[1].split("</section>")[0]


def test_signing_out_this_session_signs_you_out(app: Flask) -> None:
    make_user()
    alice = browser(app)
    sign_in(alice)
    reference = _reference_of(account_page(alice), "Chrome on Linux")
    response = post_form(alice, "/account/sessions/sign-out", session=reference)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert not is_signed_in(alice)


def test_sign_out_everywhere_else(app: Flask) -> None:
    make_user()
    alice = browser(app, CHROME_ON_LINUX)
    others = [browser(app, FIREFOX_ON_WINDOWS), browser(app, FIREFOX_ON_WINDOWS)]
    sign_in(alice)
    for other in others:
        sign_in(other)
    response = post_form(alice, "/account/sessions/sign-out-others")
    assert response.status_code == 302
    assert is_signed_in(alice)
    assert not any(is_signed_in(other) for other in others)


def test_revoking_a_connected_app_ends_its_access(app: Flask) -> None:
    make_user()
    rp, secret = make_client(name="Photo Printer")
    assert secret is not None
    alice = browser(app)
    sign_in(alice)
    tokens = user_tokens(alice, rp, secret)
    page = account_page(alice)
    assert "Photo Printer" in page
    assert "See your e-mail address" in page
    assert f'name="client_id" value="{rp.client_id}"' in page

    response = post_form(alice, "/account/apps/revoke", client_id=rp.client_id)

    assert response.status_code == 302
    assert "Photo Printer" not in account_page(alice)
    refreshed = refresh(alice, rp, secret, tokens["refresh_token"])
    assert refreshed.status_code == 400
    assert refreshed.get_json()["error"] == "invalid_grant"
    assert introspect(alice, rp, secret, tokens["access_token"]) == {"active": False}
    _, challenge = pkce_pair()
    again = alice.get(
        "/authorize",
        query_string={
            "response_type": "code",
            "client_id": rp.client_id,
            "redirect_uri": "https://rp.example.com/callback",
            "scope": "openid profile email offline_access",
            "state": "s",
            "nonce": "n",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    assert again.status_code == 200
    assert 'name="decision" value="allow"' in again.text


def test_nobody_can_sign_out_another_persons_session(app: Flask) -> None:
    make_user()
    make_user(email="bob@example.com", name="Bob")
    alice = browser(app)
    bob = browser(app, FIREFOX_ON_WINDOWS)
    sign_in(alice)
    sign_in(bob, "bob@example.com")
    bob_reference = _reference_of(account_page(bob), "Firefox on Windows")
    assert "Firefox on Windows" not in account_page(alice)

    response = post_form(alice, "/account/sessions/sign-out", session=bob_reference)

    assert response.status_code == 404
    assert is_signed_in(bob)
    assert is_signed_in(alice)


def test_nobody_can_revoke_another_persons_app(app: Flask) -> None:
    make_user()
    make_user(email="bob@example.com", name="Bob")
    rp, secret = make_client(name="Bob's App")
    assert secret is not None
    alice = browser(app)
    bob = browser(app)
    sign_in(alice)
    sign_in(bob, "bob@example.com")
    tokens = user_tokens(bob, rp, secret)
    assert "Bob&#39;s App" not in account_page(alice)

    response = post_form(alice, "/account/apps/revoke", client_id=rp.client_id)

    assert response.status_code == 404
    assert refresh(bob, rp, secret, tokens["refresh_token"]).status_code == 200
    assert "Bob&#39;s App" in account_page(bob)


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/account/name", {"name": "Mallory"}),
        ("/account/email", {"email": "mallory@example.com", "email_password": PASSWORD}),
        (
            "/account/password",
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
            },
        ),
        ("/account/sessions/sign-out-others", {}),
        ("/account/apps/revoke", {"client_id": "anything"}),
    ],
)
def test_forms_without_csrf_token_are_refused(
    app: Flask, path: str, fields: dict[str, str]
) -> None:
    user = make_user(name="Alice Liddell")
    old_hash = user.password_hash
    alice = browser(app)
    laptop = browser(app, FIREFOX_ON_WINDOWS)
    sign_in(alice)
    sign_in(laptop)
    response = alice.post(path, data=fields)
    assert response.status_code == 400
    db.session.refresh(user)
    assert user.name == "Alice Liddell"
    assert user.email == "alice@example.com"
    assert user.password_hash == old_hash
    assert is_signed_in(laptop)


def test_session_sign_out_without_csrf_token_is_refused(app: Flask) -> None:
    make_user()
    alice = browser(app)
    laptop = browser(app, FIREFOX_ON_WINDOWS)
    sign_in(alice)
    sign_in(laptop)
    reference = _reference_of(account_page(alice), "Firefox on Windows")
    response = alice.post("/account/sessions/sign-out", data={"session": reference})
    assert response.status_code == 400
    assert is_signed_in(laptop)


def test_changing_the_email_waits_for_the_new_address_to_be_verified(app: Flask) -> None:
    """Uses accounts.email_change.request_email_change (the "mail-accounts" helper's)."""
    user = make_user()
    alice = browser(app)
    sign_in(alice)
    response = post_form(
        alice, "/account/email", email="Alice.New@Example.com", email_password=PASSWORD
    )
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.email == "alice@example.com"
    token = db.session.scalar(
        select(AccountToken).where(
            AccountToken.user_id == user.id, AccountToken.purpose == "verify_email"
        )
    )
    assert token is not None
    assert token.email == "alice.new@example.com"
    page = account_page(alice)
    assert "alice.new@example.com" in page
    assert "Your e-mail address changes when you open it." in page


def test_changing_to_the_same_email_is_refused(app: Flask) -> None:
    make_user()
    alice = browser(app)
    sign_in(alice)
    response = post_form(
        alice, "/account/email", email="ALICE@example.com", email_password=PASSWORD
    )
    assert response.status_code == 422
    assert 'id="email-error"' in response.text
    assert db.session.scalar(select(AccountToken)) is None
    assert db.session.scalar(select(User.email)) == "alice@example.com"
