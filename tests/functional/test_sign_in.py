"""Signing in and out through the hosted pages, as a browser would."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver.extensions import db, utcnow
from authserver.sessions.models import LoginSession
from authserver.sessions.services import COOKIE_NAME
from tests.factories import PASSWORD, make_user

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token from the form on `path`."""
    match = CSRF_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(
    client: FlaskClient, email: str = "alice@example.com", password: str = PASSWORD, **form: str
) -> Any:
    """Submit the sign-in form like a browser: load it, then post it with its token."""
    data = {"csrf_token": csrf_token(client, "/login?reauth=1"), "email": email}
    data.update(password=password, **form)
    return client.post("/login", data=data)


def session_cookie(client: FlaskClient) -> Any:
    return client.get_cookie(COOKIE_NAME)


def without_csrf(body: str) -> str:
    return CSRF_RE.sub('name="csrf_token" value=""', body)


def test_the_sign_in_page_has_labelled_inputs_and_a_button(client: FlaskClient) -> None:
    body = client.get("/login").get_data(as_text=True)

    assert '<label for="email">' in body
    assert '<label for="password">' in body
    assert re.search(
        r'<input id="email" name="email" type="email"[^>]*autocomplete="username"', body
    )
    assert re.search(r'<input id="password" name="password" type="password"', body)
    assert 'autocomplete="current-password"' in body
    assert '<button type="submit"' in body
    assert CSRF_RE.search(body)


def test_signing_in_sets_an_http_only_lax_session_cookie(client: FlaskClient) -> None:
    make_user()

    response = sign_in(client)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = session_cookie(client)
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert cookie.path == "/"
    assert not cookie.secure
    assert "alice@example.com" in client.get("/").get_data(as_text=True)


def test_the_session_cookie_is_secure_with_an_https_issuer(app_factory: Any) -> None:
    app: Flask = app_factory(issuer="https://auth.example.com")
    with app.app_context():
        make_user()
    client = app.test_client()
    base = "https://auth.example.com"
    token = CSRF_RE.search(client.get("/login", base_url=base).get_data(as_text=True))
    assert token

    response = client.post(
        "/login",
        base_url=base,
        data={"csrf_token": token.group(1), "email": "alice@example.com", "password": PASSWORD},
    )

    assert response.status_code == 302
    set_cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME)
    )
    assert "Secure" in set_cookie
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie


def test_the_session_records_password_authentication(client: FlaskClient) -> None:
    user = make_user()

    sign_in(client)

    login_session = db.session.query(LoginSession).one()
    assert login_session.user_id == user.id
    assert login_session.amr == ["pwd"]
    assert login_session.revoked_at is None


def test_unknown_email_and_wrong_password_get_identical_answers(client: FlaskClient) -> None:
    make_user()

    unknown = sign_in(client, email="nobody@example.com", password="wrong password")
    wrong = sign_in(client, email="nobody@example.com", password=PASSWORD)
    make_user(email="nobody@example.com", password="another password")
    wrong_for_existing = sign_in(client, email="nobody@example.com", password="wrong password")

    assert unknown.status_code == wrong.status_code == wrong_for_existing.status_code == 200
    bodies = {without_csrf(r.get_data(as_text=True)) for r in (unknown, wrong, wrong_for_existing)}
    assert len(bodies) == 1
    body = bodies.pop()
    assert (
        '<p class="alert" role="alert" id="login-error">Incorrect e-mail or password.</p>' in body
    )
    assert session_cookie(client) is None


def test_an_inactive_user_cannot_sign_in(client: FlaskClient) -> None:
    user = make_user()
    user.is_active = False
    db.session.commit()

    response = sign_in(client)

    assert "Incorrect e-mail or password." in response.get_data(as_text=True)
    assert session_cookie(client) is None


def test_an_empty_form_asks_for_both_fields(client: FlaskClient) -> None:
    response = sign_in(client, email="", password="")

    assert response.status_code == 200
    assert "Enter your e-mail and password." in response.get_data(as_text=True)


def test_the_session_id_changes_at_every_sign_in(client: FlaskClient) -> None:
    make_user()
    sign_in(client)
    first = session_cookie(client).value

    sign_in(client)
    second = session_cookie(client).value

    assert first != second
    sessions = db.session.query(LoginSession).order_by(LoginSession.created_at).all()
    assert len(sessions) == 2
    assert sum(s.revoked_at is None for s in sessions) == 1


def test_an_old_session_id_no_longer_works(app: Flask, client: FlaskClient) -> None:
    make_user()
    sign_in(client)
    old = session_cookie(client).value
    sign_in(client)

    attacker = app.test_client()
    attacker.set_cookie(COOKIE_NAME, old)

    assert "You are not signed in." in attacker.get("/").get_data(as_text=True)


def test_a_session_id_planted_before_sign_in_is_replaced(app: Flask, client: FlaskClient) -> None:
    make_user()
    client.set_cookie(COOKIE_NAME, "planted-by-an-attacker")

    sign_in(client)

    assert session_cookie(client).value != "planted-by-an-attacker"


def test_the_csrf_token_rotates_at_sign_in(client: FlaskClient) -> None:
    make_user()
    before = csrf_token(client, "/login?reauth=1")
    sign_in(client)

    # The token from before sign-in no longer validates.
    response = client.post("/logout", data={"csrf_token": before})

    assert response.status_code == 400
    assert session_cookie(client) is not None


def test_an_expired_session_is_ignored(client: FlaskClient) -> None:
    make_user()
    sign_in(client)
    db.session.query(LoginSession).update({"expires_at": utcnow() - timedelta(seconds=1)})
    db.session.commit()

    response = client.get("/")

    assert "You are not signed in." in response.get_data(as_text=True)
    assert session_cookie(client) is None


@pytest.mark.parametrize(
    "target",
    [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "javascript:x",
    ],
)
def test_next_never_redirects_off_site(client: FlaskClient, target: str) -> None:
    make_user()

    response = sign_in(client, next=target)

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_next_from_the_query_string_is_kept_through_the_form(client: FlaskClient) -> None:
    make_user()
    target = "/authorize?client_id=abc&scope=openid"
    page = client.get("/login", query_string={"next": target}).get_data(as_text=True)
    assert 'name="next" value="/authorize?client_id=abc&amp;scope=openid"' in page

    response = sign_in(client, next=target)

    assert response.headers["Location"] == target


def test_signed_in_visitors_skip_the_form_unless_reauth(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    skipped = client.get("/login?next=/somewhere")
    forced = client.get("/login?next=/somewhere&reauth=1")

    assert skipped.status_code == 302
    assert skipped.headers["Location"] == "/somewhere"
    assert forced.status_code == 200
    assert 'name="password"' in forced.get_data(as_text=True)


def test_login_hint_prefills_the_email(client: FlaskClient) -> None:
    body = client.get("/login?login_hint=bob%40example.com").get_data(as_text=True)

    assert 'value="bob@example.com"' in body


def test_login_hint_is_escaped(client: FlaskClient) -> None:
    body = client.get('/login?login_hint="><script>x</script>').get_data(as_text=True)

    assert "<script>x</script>" not in body
    assert "&#34;&gt;&lt;script&gt;" in body


def test_logout_asks_for_confirmation_then_revokes(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    page = client.get("/logout")
    assert page.status_code == 200
    assert 'method="post"' in page.get_data(as_text=True)
    assert db.session.query(LoginSession).one().revoked_at is None

    response = client.post(
        "/logout", data={"csrf_token": csrf_token(client, "/logout"), "confirm": "yes"}
    )

    assert response.status_code == 303
    assert response.headers["Location"] == "/logout/done"
    assert session_cookie(client) is None
    db.session.expire_all()
    assert db.session.query(LoginSession).one().revoked_at is not None
    assert "You are not signed in." in client.get("/").get_data(as_text=True)


def test_logout_without_csrf_token_is_refused(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    response = client.post("/logout", data={"confirm": "yes"})

    assert response.status_code == 400
    assert db.session.query(LoginSession).one().revoked_at is None


def test_sign_in_without_csrf_token_is_refused(client: FlaskClient) -> None:
    make_user()

    response = client.post("/login", data={"email": "alice@example.com", "password": PASSWORD})

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert session_cookie(client) is None


def test_pages_are_not_cached_and_cannot_be_framed(client: FlaskClient) -> None:
    make_user()
    sign_in(client)

    response = client.get("/")

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_product_name_comes_from_the_config(app_factory: Any) -> None:
    app: Flask = app_factory(product_name="Example Login")

    body = app.test_client().get("/login").get_data(as_text=True)

    assert "<title>Sign in · Example Login</title>" in body


@pytest.mark.parametrize(
    "raw",
    [
        b"email=%00&password=%00",
        b"email=%ff%fe&password=%c3%28",
        b"email=" + b"a" * 5000 + b"&password=x",
        b"email=a%40b.c&password=" + b"p" * 5000,
        b"email[]=x&email=y&email=z",
    ],
)
def test_garbage_form_input_never_fails_with_500(client: FlaskClient, raw: bytes) -> None:
    token = csrf_token(client)

    response = client.post(
        "/login",
        data=raw + b"&csrf_token=" + token.encode(),
        content_type="application/x-www-form-urlencoded",
    )

    if b"%00" in raw:
        # NUL is refused for every endpoint before any view runs (security/limits.py).
        assert response.status_code == 400
        assert "NUL" in response.get_data(as_text=True)
        return
    assert response.status_code == 200
    assert 'role="alert"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "query",
    [
        "next=%00&login_hint=%00",
        "next=%ff%fe&login_hint=%ff",
        "reauth=%00&next=" + "x" * 9000,
        "login_hint=" + "a" * 5000,
    ],
)
def test_garbage_query_strings_never_fail_with_500(client: FlaskClient, query: str) -> None:
    response = client.get("/login?" + query)

    # Values over 8 KiB and NUL are refused outright (security/limits.py); the rest render.
    assert response.status_code == (400 if len(query) > 8192 or "%00" in query else 200)
    assert response.mimetype == "text/html"


def test_garbage_session_cookies_are_ignored(app: Flask) -> None:
    for value in ("", "%00", "a" * 4000, "\u00e9\u00e8", "x;y"):
        browser = app.test_client()
        browser.set_cookie(COOKIE_NAME, value)
        response = browser.get("/")
        assert response.status_code == 200
        assert "You are not signed in." in response.get_data(as_text=True)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    email=st.text(max_size=300),
    password=st.text(max_size=300),
    next_url=st.text(max_size=200),
)
def test_random_sign_in_input_is_refused_without_errors(
    client: FlaskClient, email: str, password: str, next_url: str
) -> None:
    from authserver.security.ratelimit import current_limiter

    # Forty examples from one address would meet the sign-in rate limit (tested elsewhere).
    current_limiter().enabled = False
    make_user_once()

    response = sign_in(client, email=email, password=password, next=next_url)

    assert session_cookie(client) is None
    if "\x00" in email + password + next_url:
        assert response.status_code == 400  # refused before any view (security/limits.py)
        return
    assert response.status_code == 200
    assert 'role="alert"' in response.get_data(as_text=True)


def make_user_once() -> None:
    from authserver.accounts.models import User

    if db.session.query(User).count() == 0:
        make_user()
