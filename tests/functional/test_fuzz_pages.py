"""Property tests for the pages people use and the JSON APIs: whatever arrives, never a 5xx.

The forms are found by reading the pages themselves (every `<form method="post">` and its
field names), so a new form is fuzzed without changing this file. Each request keeps the
valid CSRF token most of the time so it reaches the form's own checks, and breaks a few
fields with the values of test_fuzz.py; bodies are also sent as JSON, as random bytes with
a wrong content type, oversized, and with huge headers.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from authserver.orgs.services import create_organization
from tests.factories import make_client, make_initial_access_token, make_user
from tests.functional.test_fuzz import (
    FUZZ,
    HEADER_TEXT,
    JSON_VALUES,
    TEXT,
    UNICODE_TEXT,
    fuzz_params,
    no_server_error,
)
from tests.oauth_helpers import csrf_token, exchange, get_code, pkce_pair, sign_in

PAGES_FUZZ = FUZZ.__class__(parent=FUZZ, max_examples=50)
ADMIN = "root@example.com"
PERSON = "alice@example.com"
TARGET = "bob@example.com"
# Forms with no input but the CSRF token whose effect is slow or ends the fuzzing browser;
# their own tests cover them (test_admin_console, test_logout).
SKIPPED_ACTIONS = ("/admin/keys/rotate",)


@dataclass
class Form:
    action: str
    fields: list[str] = field(default_factory=list)


class FormParser(HTMLParser):
    """Every POST form of a page: its action (the page itself when absent) and field names."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page = page
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and (values.get("method") or "").lower() == "post":
            self._current = Form(html.unescape(values.get("action") or self.page))
        elif tag in ("input", "select", "textarea", "button") and self._current is not None:
            name = values.get("name")
            if name and name not in self._current.fields:
                self._current.fields.append(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._current is not None:
            self.forms.append(self._current)
            self._current = None


def forms_on(browser: FlaskClient, pages: list[str]) -> list[Form]:
    """The POST forms of these pages, each action once."""
    found: dict[str, Form] = {}
    for page in pages:
        response = browser.get(page)
        if response.status_code != 200:  # e.g. /device asks a signed-out browser to sign in
            continue
        parser = FormParser(page)
        parser.feed(response.text)
        for form in parser.forms:
            if form.action not in SKIPPED_ACTIONS:
                found.setdefault(form.action, form)
    return list(found.values())


@dataclass
class World:
    app: Flask
    person_forms: list[Form]
    admin_forms: list[Form]
    target_sub: str
    admin_token: str


@pytest.fixture
def app(app_factory: Any) -> Any:
    # Rate limits and lockouts have their own tests; here they would only stop the fuzzing.
    app = app_factory(dynamic_registration=True, ratelimit_enabled=False, lockout_threshold=10**6)
    with app.app_context():
        yield app


@pytest.fixture
def world(app: Flask) -> World:
    alice = make_user(PERSON)
    make_user(ADMIN, roles=["admin"])
    target = make_user(TARGET, name="Bob Builder")
    tool, tool_secret = make_client(
        name="Admin tool", scope="openid offline_access admin", roles=["admin"]
    )
    assert tool_secret is not None
    admin_browser = app.test_client()
    sign_in(admin_browser, ADMIN)
    verifier, challenge = pkce_pair()
    code, _ = get_code(admin_browser, tool.client_id, challenge, scope="openid admin")
    admin_token = exchange(admin_browser, tool.client_id, tool_secret, code, verifier).get_json()
    slug = create_organization("Acme Corp", owner=alice).slug
    # Found once: the examples change what the pages show, and the draws must not depend on it.
    person_pages = ["/account", "/account/two-step", "/orgs/", f"/orgs/{slug}"]
    admin_pages = [
        "/admin/users/new",
        f"/admin/users/{target.sub}",
        "/admin/clients/new",
        f"/admin/clients/{tool.client_id}",
        "/admin/roles/new",
        "/admin/roles/viewer",
    ]
    return World(
        app=app,
        person_forms=forms_on(signed_in(app, PERSON)[0], person_pages),
        admin_forms=forms_on(admin_browser, admin_pages),
        target_sub=target.sub,
        admin_token=admin_token["access_token"],
    )


def body_for(data: st.DataObject, params: list[tuple[str, str]]) -> dict[str, Any]:
    """A form (usually), JSON, random bytes under a random content type, or an oversized body."""
    kind = data.draw(st.sampled_from(("form",) * 5 + ("json", "bytes", "huge")), label="body")
    if kind == "form":
        return {"data": MultiDict(params)}
    if kind == "json":
        return {"json": data.draw(st.one_of(JSON_VALUES, st.just(dict(params))), label="json")}
    content_type = data.draw(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                "multipart/form-data; boundary=x",
                "application/json",
                "text/plain",
                "",
            ]
        ),
        label="content type",
    )
    if kind == "huge":
        size = data.draw(st.sampled_from([64 * 1024 - 1, 64 * 1024 + 1, 300 * 1024]), label="size")
        return {"data": b"a=" + b"b" * size, "content_type": content_type}
    return {"data": data.draw(st.binary(max_size=300), label="raw"), "content_type": content_type}


def odd_headers(data: st.DataObject) -> dict[str, str]:
    """Usually none; sometimes a huge or strange header (gunicorn caps these in production)."""
    kind = data.draw(st.sampled_from(("none",) * 4 + ("huge", "odd")), label="headers")
    if kind == "huge":
        return {"X-Padding": "a" * data.draw(st.integers(8_000, 70_000), label="header size")}
    if kind == "odd":
        name = data.draw(st.sampled_from(["Cookie", "Accept", "Origin", "Referer", "Host"]))
        return {name: data.draw(HEADER_TEXT, label=name)}
    return {}


def post_form(
    data: st.DataObject, browser: FlaskClient, form: Form, token: str, valid: dict[str, list[str]]
) -> TestResponse:
    values = {"csrf_token": [token], **valid}
    names = tuple(dict.fromkeys(("csrf_token", *form.fields)))
    params = fuzz_params(data, values, names)
    return browser.post(form.action, headers=odd_headers(data), **body_for(data, params))


def check_page_response(response: TestResponse) -> None:
    """No 5xx, and any redirect stays on this server."""
    no_server_error(response)
    if response.status_code in (301, 302, 303, 307, 308):
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith(("//", "/\\")), location


def signed_in(app: Flask, email: str) -> tuple[FlaskClient, str]:
    browser = app.test_client()
    sign_in(browser, email)
    return browser, session_csrf(browser)


def session_csrf(browser: FlaskClient) -> str:
    """A CSRF token valid for this browser's session, signed in or not."""
    page = browser.get("/login?reauth=1")
    if page.status_code != 200:
        page = browser.get("/account")
    return csrf_token(page.text)


@PAGES_FUZZ
@given(data=st.data())
def test_signed_out_forms_never_fail(world: World, data: st.DataObject) -> None:
    browser = world.app.test_client()
    page = data.draw(
        st.sampled_from(["/signup", "/password/forgot", "/login", "/device", "/logout"]),
        label="page",
    )
    forms = forms_on(browser, [page])
    token = csrf_token(browser.get("/login").text)
    valid = {
        "email": [PERSON, "new@example.com", "ALICE@example.com "],
        "password": ["correct horse battery staple", "short"],
        "name": ["New Person"],
        "user_code": ["BCDF-GHJK", "bcdfghjk"],
    }
    form = data.draw(st.sampled_from(forms), label="form") if forms else Form(page, ["user_code"])
    check_page_response(post_form(data, browser, form, token, valid))


@PAGES_FUZZ
@given(data=st.data())
def test_pages_with_a_token_in_the_path_never_fail(world: World, data: st.DataObject) -> None:
    """Reset, verification and invitation links with random tokens; two-step and device decision."""
    browser = world.app.test_client()
    if data.draw(st.booleans(), label="signed in"):
        sign_in(browser)
    token = session_csrf(browser)
    path_token = data.draw(
        st.one_of(
            st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=90),
            UNICODE_TEXT.filter(lambda value: "/" not in value and "?" not in value),
        ),
        label="path token",
    )
    template = data.draw(
        st.sampled_from(
            [
                "/password/reset/{}",
                "/verify-email/{}",
                "/orgs/invitations/{}",
                "/login/two-step",
                "/device/decision",
                "/verify-email/resend",
            ]
        ),
        label="page",
    )
    path = template.format(path_token or "x")
    fields = ("password", "password_confirm", "code", "method", "decision", "user_code", "next")
    valid = {"decision": ["allow", "deny"], "method": ["totp", "recovery"], "code": ["123456"]}
    if data.draw(st.booleans(), label="GET"):
        response = browser.get(path, query_string=fuzz_params(data, valid, fields))
    else:
        response = post_form(data, browser, Form(path, list(fields)), token, valid)
    check_page_response(response)


@PAGES_FUZZ
@given(data=st.data())
def test_logout_never_fails_with_any_id_token_hint(world: World, data: st.DataObject) -> None:
    browser = world.app.test_client()
    if data.draw(st.booleans(), label="signed in"):
        sign_in(browser)
    token = session_csrf(browser)
    valid = {
        "id_token_hint": ["eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c"],
        "post_logout_redirect_uri": ["https://rp.example.com/logout", "//evil.example"],
        "state": ["xyz"],
        "client_id": ["nobody"],
        "csrf_token": [token],
    }
    optional = frozenset(valid)
    params = fuzz_params(data, valid, tuple(valid), optional)
    if data.draw(st.booleans(), label="GET"):
        response = browser.get("/logout", query_string=params, headers=odd_headers(data))
    else:
        response = browser.post("/logout", headers=odd_headers(data), **body_for(data, params))
    no_server_error(response)


@PAGES_FUZZ
@given(data=st.data())
def test_account_and_organization_forms_never_fail(world: World, data: st.DataObject) -> None:
    browser, token = signed_in(world.app, PERSON)
    form = data.draw(st.sampled_from(world.person_forms), label="form")
    valid = {
        "email": [TARGET, "carol@example.com"],
        "role": ["member", "admin", "owner"],
        "name": ["Alice", "Acme"],
        "slug": ["acme", "beta"],
    }
    check_page_response(post_form(data, browser, form, token, valid))


@PAGES_FUZZ
@given(data=st.data())
def test_admin_console_forms_never_fail(world: World, data: st.DataObject) -> None:
    browser, token = signed_in(world.app, ADMIN)
    form = data.draw(st.sampled_from(world.admin_forms), label="form")
    valid = {
        "email": ["new@example.com", ADMIN],
        "roles": ["viewer", "admin", "developer"],
        "permissions": ["users:read", "clients:write"],
        "redirect_uris": ["https://rp.example.com/cb", "http://localhost:8000/cb"],
        "grant_types": ["authorization_code", "client_credentials"],
        "scope": ["openid", "openid profile"],
        "token_endpoint_auth_method": ["client_secret_basic", "none"],
    }
    check_page_response(post_form(data, browser, form, token, valid))


def admin_api_paths(world: World) -> list[tuple[str, str]]:
    return [
        ("POST", "/admin/api/v1/users"),
        ("PATCH", f"/admin/api/v1/users/{world.target_sub}"),
        ("POST", f"/admin/api/v1/users/{world.target_sub}/password-reset"),
        ("POST", "/admin/api/v1/clients"),
        ("PATCH", "/admin/api/v1/clients/nobody"),
        ("POST", "/admin/api/v1/roles"),
        ("PATCH", "/admin/api/v1/roles/viewer"),
        ("POST", "/admin/api/v1/initial-access-tokens"),
        ("GET", "/admin/api/v1/users"),
        ("GET", "/admin/api/v1/audit"),
        ("GET", "/admin/api/v1/clients"),
    ]


ADMIN_JSON = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "email": st.one_of(TEXT, st.just("new@example.com")),
            "name": TEXT,
            "password": TEXT,
            "roles": st.one_of(st.lists(TEXT, max_size=3), JSON_VALUES),
            "permissions": st.one_of(st.lists(st.sampled_from(["users:read", "x"])), JSON_VALUES),
            "active": JSON_VALUES,
            "email_verified": JSON_VALUES,
            "redirect_uris": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES),
            "grant_types": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES),
            "scope": st.one_of(TEXT, JSON_VALUES),
            "token_endpoint_auth_method": st.one_of(TEXT, st.just("none")),
            "description": TEXT,
            "note": TEXT,
            "expires_in": JSON_VALUES,
            "uses": JSON_VALUES,
        },
    ),
)


@PAGES_FUZZ
@given(data=st.data())
def test_admin_api_never_fails_on_random_json(world: World, data: st.DataObject) -> None:
    method, path = data.draw(st.sampled_from(admin_api_paths(world)), label="endpoint")
    headers = {"Authorization": f"Bearer {world.admin_token}", **odd_headers(data)}
    client = world.app.test_client()
    if method == "GET":
        params = data.draw(
            st.lists(st.tuples(st.sampled_from(["q", "limit", "cursor", "event", "page"]), TEXT)),
            label="query",
        )
        response = client.get(path, query_string=params, headers=headers)
    elif data.draw(st.integers(0, 4), label="raw") == 0:
        response = client.open(path, method=method, headers=headers, **body_for(data, []))
    else:
        body = data.draw(ADMIN_JSON, label="json")
        response = client.open(path, method=method, headers=headers, json=body)
    response.get_data()
    no_server_error(response)
    assert response.status_code != 401, "the admin token stopped working"


REGISTRATION_JSON = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {},
        optional={
            "redirect_uris": st.one_of(
                st.lists(st.one_of(TEXT, st.just("https://app.example.org/cb")), max_size=3),
                JSON_VALUES,
            ),
            "client_name": st.one_of(TEXT, JSON_VALUES),
            "grant_types": st.one_of(
                st.lists(st.sampled_from(["authorization_code", "refresh_token", "implicit"])),
                JSON_VALUES,
            ),
            "response_types": st.one_of(st.lists(st.sampled_from(["code", "token"])), JSON_VALUES),
            "token_endpoint_auth_method": st.one_of(
                st.sampled_from(["client_secret_basic", "none", "private_key_jwt"]), TEXT
            ),
            "scope": st.one_of(TEXT, JSON_VALUES),
            "jwks": JSON_VALUES,
            "jwks_uri": TEXT,
            "contacts": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES),
            "logo_uri": TEXT,
            "post_logout_redirect_uris": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES),
            "software_statement": TEXT,
        },
    ),
)


@PAGES_FUZZ
@given(data=st.data())
def test_dynamic_registration_never_fails_on_random_json(world: World, data: st.DataObject) -> None:
    # Initial access tokens are single-use (RFC 7591 section 3): a fresh one per example.
    kind = data.draw(st.sampled_from(["valid"] * 4 + ["", "wrong"]), label="initial token")
    token = make_initial_access_token(note="fuzz") if kind == "valid" else kind
    headers = {"Authorization": f"Bearer {token}", **odd_headers(data)} if token else {}
    client = world.app.test_client()
    if data.draw(st.integers(0, 4), label="raw") == 0:
        response = client.post("/oauth2/register", headers=headers, **body_for(data, []))
    else:
        body = data.draw(REGISTRATION_JSON, label="json")
        response = client.post("/oauth2/register", headers=headers, json=body)
    no_server_error(response)
    if response.status_code >= 400:
        assert response.is_json, response.data[:200]


@PAGES_FUZZ
@given(data=st.data())
def test_healthz_and_discovery_never_fail(world: World, data: st.DataObject) -> None:
    path = data.draw(
        st.sampled_from(
            ["/healthz", "/.well-known/openid-configuration", "/.well-known/jwks.json", "/"]
        ),
        label="path",
    )
    params = data.draw(st.lists(st.tuples(UNICODE_TEXT, TEXT), max_size=3), label="query")
    method = data.draw(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]), label="method")
    response = world.app.test_client().open(
        path, method=method, query_string=params, headers=odd_headers(data)
    )
    no_server_error(response)
