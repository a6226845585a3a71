"""Property tests: malformed and random requests never cause a 5xx and always get the spec's error.

Hypothesis throws random strings (unicode, quotes, backslashes, control
characters, huge values), repeated and missing parameters, wrong types and
malformed credentials at every endpoint, mixed with valid values so requests
reach deep into the checks. One database serves all examples of a test.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, sign_in

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SPA_REDIRECT_URI = "https://spa.example.org/cb"

# RFC 6749 section 5.2, plus RFC 8707 section 2 `invalid_target`.
TOKEN_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
}
# RFC 7009 section 2.2.1 adds `unsupported_token_type` to the section 5.2 set.
REVOCATION_ERRORS = TOKEN_ERRORS | {"unsupported_token_type"}
# RFC 7662 section 2.3: the section 5.2 errors, in practice invalid_request and invalid_client.
INTROSPECTION_ERRORS = TOKEN_ERRORS
# RFC 6750 section 3.1.
BEARER_ERRORS = {"invalid_request", "invalid_token", "insufficient_scope"}
# RFC 6749 section 4.1.2.1, OpenID Connect Core section 3.1.2.6, RFC 8707 section 2.
AUTHORIZE_ERRORS = {
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
    "invalid_target",
    # OpenID Connect Core 1.0 errata set 2, section 3.1.2.6: an unmet acr (oidc/acr.py).
    "unmet_authentication_requirements",
}

# Values that have broken parsers before.
NASTY = [
    "",
    " ",
    "\x00",
    "%00",
    "%",
    "%zz",
    "\\",
    '"',
    "'",
    "';--",
    '"><script>alert(1)</script>',
    "\r\nSet-Cookie: x=1",
    "\u202e\u200b",
    "\U0001d518\U0001f600",
    "\udcff".encode("utf-8", "surrogatepass").decode("latin-1"),
    "null",
    "true",
    "[]",
    "{}",
    '{"a":',
    '{"userinfo": []}',
    '{"id_token": {"email": null}, "userinfo": {"name": {"essential": true}}}',
    '"string"',
    "[" * 2000,
    "-1",
    "0",
    "1e309",
    "NaN",
    "99999999999999999999999",
    "openid",
    "openid profile email offline_access",
    "none",
    "login consent",
    "S256",
    "plain",
    "code",
    "code id_token",
    "query",
    "fragment",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/cb",
    REDIRECT_URI + "/../x",
    REDIRECT_URI + "?a=b",
    "javascript:alert(1)",
    "a" * 5000,
]
UNICODE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
TEXT = st.one_of(
    UNICODE_TEXT,
    st.sampled_from(NASTY),
    st.text(alphabet="\"'\\<>%&=;#?/+ \t\r\n\x00\x7f", max_size=20),
    st.builds(lambda char, n: char * n, st.sampled_from("a%\\é\x00"), st.integers(1000, 20000)),
    st.integers(-(2**70), 2**70).map(str),
    st.floats().map(str),
)
# What an HTTP server can receive in a header value: latin-1 characters without CR/LF/NUL.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | UNICODE_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(UNICODE_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)

AUTHORIZE_NAMES = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "claims",
    "response_mode",
    "request",
    "request_uri",
    "resource",
    "acr_values",
    "ui_locales",
    "display",
    "authserver_reauth",
)
TOKEN_NAMES = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "device_code",
    "username",
    "password",
)
GRANT_TYPES = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
    "implicit",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)


@dataclass
class World:
    """A person, three clients, live tokens, and two browsers: signed out and signed in."""

    app: Flask
    issuer: str
    rp_id: str
    rp_secret: str
    spa_id: str
    service_id: str
    service_secret: str
    access_token: str
    refresh_token: str
    used_code: str
    verifier: str
    signed_out: FlaskClient
    signed_in: FlaskClient
    signed_in_csrf: str


@pytest.fixture
def world(app: Flask, client: FlaskClient) -> World:
    make_user()
    rp, rp_secret = make_client()
    spa, _ = make_client(
        name="SPA", redirect_uris=(SPA_REDIRECT_URI,), auth_method="none", skip_consent=True
    )
    service, service_secret = make_client(
        name="Service", redirect_uris=(), grant_types=("client_credentials",), scope="api:read"
    )
    assert rp_secret is not None and service_secret is not None
    browser = app.test_client()
    sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    token = exchange(browser, rp.client_id, rp_secret, code, verifier).get_json()
    reauth_page = browser.get("/login?reauth=1")
    return World(
        app=app,
        issuer=app.config["AUTHSERVER"].issuer,
        rp_id=rp.client_id,
        rp_secret=rp_secret,
        spa_id=spa.client_id,
        service_id=service.client_id,
        service_secret=service_secret,
        access_token=token["access_token"],
        refresh_token=token["refresh_token"],
        used_code=code,
        verifier=verifier,
        signed_out=client,
        signed_in=browser,
        signed_in_csrf=csrf_token(reauth_page.text),
    )


def fuzz_params(
    data: st.DataObject,
    valid: dict[str, list[str]],
    names: tuple[str, ...],
    optional: frozenset[str] = frozenset(),
) -> list[tuple[str, str]]:
    """A valid request with a few parameters broken (random, missing, repeated), plus extras.

    Names in `valid` and not in `optional` are sent with a valid value unless broken,
    so most requests get past the first check and exercise the later ones.
    """
    broken = data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True), label="broken")
    params: list[tuple[str, str]] = []
    for name in names:
        choices = valid.get(name, [])
        if name not in broken:
            if choices and name not in optional:
                params.append((name, data.draw(st.sampled_from(choices), label=name)))
            continue
        action = data.draw(st.sampled_from(("random", "missing", "repeat", "valid")), label=name)
        if action == "missing":
            continue
        if action == "valid" and choices:
            params.append((name, data.draw(st.sampled_from(choices), label=name)))
        else:
            params.append((name, data.draw(TEXT, label=name)))
        if action == "repeat":
            params.append((name, data.draw(st.one_of(st.sampled_from(choices or [""]), TEXT))))
    extra_name = st.one_of(UNICODE_TEXT, st.sampled_from(("csrf_token", "decision", "foo")))
    params.extend(data.draw(st.lists(st.tuples(extra_name, TEXT), max_size=2), label="extra"))
    return params


def basic_header(user: str, password: str) -> str:
    raw = f"{user}:{password}".encode("utf-8", "surrogatepass")
    return "Basic " + base64.b64encode(raw).decode()


def malformed_authorization(world: World) -> st.SearchStrategy[str]:
    """Authorization headers seen in the wild: wrong secrets, bad base64, other schemes."""
    valid_basic = basic_header(world.rp_id, world.rp_secret)
    return st.one_of(
        st.builds(basic_header, st.sampled_from([world.rp_id, world.spa_id]), TEXT),
        st.builds(basic_header, TEXT, TEXT),
        st.builds(lambda raw: "Basic " + base64.b64encode(raw).decode(), st.binary(max_size=64)),
        st.builds(lambda value: "Basic " + value, HEADER_TEXT),
        st.sampled_from(
            ["Basic", "Basic ", "Basic ====", "Basic Og==", "BASIC " + valid_basic[6:]]
        ),
        st.builds(lambda value: "Bearer " + value, HEADER_TEXT),
        HEADER_TEXT,
    )


def auth_headers(data: st.DataObject, world: World) -> dict[str, str]:
    """No Authorization header, a valid one, or a malformed one."""
    kind = data.draw(
        st.sampled_from(("none", "rp", "rp", "service", "bearer", "malformed", "malformed")),
        label="Authorization kind",
    )
    value = {
        "none": None,
        "rp": basic_header(world.rp_id, world.rp_secret),
        "service": basic_header(world.service_id, world.service_secret),
        "bearer": f"Bearer {world.access_token}",
    }.get(kind)
    if kind == "malformed":
        value = data.draw(malformed_authorization(world), label="Authorization")
    return {} if value is None else {"Authorization": value}


def post_body(data: st.DataObject, params: list[tuple[str, str]]) -> dict[str, Any]:
    """The parameters as a form (usually), as JSON (wrong type), or as raw bytes."""
    kind = data.draw(st.sampled_from(("form",) * 4 + ("json", "bytes")), label="body")
    if kind == "form":
        return {"data": MultiDict(params)}
    if kind == "json":
        return {"json": data.draw(st.one_of(JSON_VALUES, st.just(dict(params))), label="json")}
    raw = data.draw(st.binary(max_size=200), label="raw body")
    content_type = data.draw(
        st.sampled_from(
            ["application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""]
        ),
        label="content type",
    )
    return {"data": raw, "content_type": content_type}


def json_error(response: TestResponse, allowed: set[str]) -> str:
    """The spec's error shape: a JSON object whose `error` is one of the allowed codes."""
    assert response.is_json, (response.status_code, response.mimetype, response.data[:200])
    body = response.get_json()
    assert isinstance(body, dict) and body.get("error") in allowed, body
    description = body.get("error_description")
    assert description is None or isinstance(description, str)
    return str(body["error"])


def no_server_error(response: TestResponse) -> None:
    """Never a 5xx; the outcome is recorded for `--hypothesis-show-statistics`."""
    body = response.get_json(silent=True) if response.is_json else None
    error = body.get("error") if isinstance(body, dict) else None
    event(f"{response.status_code} {error or ''}".strip())
    assert response.status_code < 500, (response.status_code, response.data[:500])


def location_params(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


def check_authorization_response(
    world: World, response: TestResponse, params: list[tuple[str, str]], browser: FlaskClient
) -> None:
    """Only the requesting client's own redirect_uri, sign-in, the consent page or a 400 page."""
    no_server_error(response)
    sent: dict[str, list[str]] = {}
    for name, value in params:
        sent.setdefault(name, []).append(value)
    if response.status_code == 302:
        location = response.headers["Location"]
        if location.startswith("/login?"):
            event("sign-in redirect")
            return
        owners = {REDIRECT_URI: world.rp_id, SPA_REDIRECT_URI: world.spa_id}
        target = location.split("?", 1)[0]
        assert target in owners, f"redirect to an unregistered URI: {location}"
        assert sent.get("client_id") == [owners[target]], "redirect to another client's URI"
        got = location_params(location)
        assert got.get("iss") == [world.issuer], location
        state = sent.get("state", [])
        if len(state) == 1 and state[0]:
            assert got.get("state") == state, (state, got.get("state"))
        if "code" in got:
            assert "error" not in got
            event("code issued")
            return
        assert len(got.get("error", [])) == 1 and got["error"][0] in AUTHORIZE_ERRORS, got
        event(f"redirected error {got['error'][0]}")
        return
    if response.status_code == 200:
        assert browser is world.signed_in, "a consent page for a signed-out browser"
        assert 'value="allow"' in response.text, "200 that is not the consent page"
        return
    assert response.status_code in (400, 413), response.status_code
    assert response.mimetype == "text/html"
    assert "Location" not in response.headers


AUTHORIZE_OPTIONAL = frozenset({"prompt", "max_age", "claims", "response_mode"})


def authorize_valid_values(data: st.DataObject, world: World) -> dict[str, list[str]]:
    """Valid values for one of the two clients (its id with its own redirect_uri)."""
    _, challenge = pkce_pair()
    client_id, redirect_uri = data.draw(
        st.sampled_from([(world.rp_id, REDIRECT_URI), (world.spa_id, SPA_REDIRECT_URI)]),
        label="client",
    )
    return {
        "response_type": ["code"],
        "client_id": [client_id],
        "redirect_uri": [redirect_uri],
        "scope": ["openid", "openid profile email offline_access", "openid email"],
        "state": ["xyz", "a b&c=d/é"],
        "nonce": ["n-0S6"],
        "code_challenge": [challenge],
        "code_challenge_method": ["S256"],
        "prompt": ["none", "login", "consent"],
        "max_age": ["0", "1", "3600"],
        "claims": ['{"userinfo": {"name": {"essential": true}}}'],
        "response_mode": ["query"],
    }


@FUZZ
@given(data=st.data())
def test_authorize_never_fails_and_never_redirects_anywhere_else(
    world: World, data: st.DataObject
) -> None:
    params = fuzz_params(
        data, authorize_valid_values(data, world), AUTHORIZE_NAMES, AUTHORIZE_OPTIONAL
    )
    browser = data.draw(st.sampled_from([world.signed_out, world.signed_in]), label="browser")
    if data.draw(st.booleans(), label="POST"):
        response = browser.post("/authorize", data=MultiDict(params))
    else:
        response = browser.get("/authorize", query_string=params)
    check_authorization_response(world, response, params, browser)


@FUZZ
@given(data=st.data())
def test_consent_decision_never_fails_and_never_redirects_anywhere_else(
    world: World, data: st.DataObject
) -> None:
    valid = authorize_valid_values(data, world)
    valid.update(csrf_token=[world.signed_in_csrf], decision=["allow", "allow", "deny"])
    names = (*AUTHORIZE_NAMES, "csrf_token", "decision")
    params = fuzz_params(data, valid, names, AUTHORIZE_OPTIONAL)
    browser = data.draw(st.sampled_from([world.signed_out, world.signed_in]), label="browser")
    response = browser.post("/authorize/decision", data=MultiDict(params))
    check_authorization_response(world, response, params, browser)


@FUZZ
@given(data=st.data())
def test_sign_in_never_fails_and_only_redirects_to_this_server(
    world: World, data: st.DataObject
) -> None:
    from authserver.security.ratelimit import current_limiter

    # A hundred sign-ins from one address would meet the rate limit (tested elsewhere).
    current_limiter().enabled = False
    browser = world.app.test_client()
    # Flask-WTF caches the CSRF token on `g`, which the test's app context shares across
    # requests; forget it so this new browser gets a token bound to its own session.
    g.pop("csrf_token", None)
    token = csrf_token(browser.get("/login").text)
    valid = {
        "email": ["alice@example.com", "ALICE@example.com "],
        "password": ["correct horse battery staple"],
        "csrf_token": [token],
        "next": ["/", "/authorize?client_id=x", "//evil.example", "/\\evil.example"],
    }
    params = fuzz_params(data, valid, ("email", "password", "csrf_token", "next"))
    if data.draw(st.booleans(), label="POST"):
        response = browser.post("/login", **post_body(data, params))
    else:
        response = browser.get("/login", query_string=params)
    no_server_error(response)
    assert response.status_code in (200, 302, 400, 413), response.status_code
    if response.status_code == 302:
        location = response.headers["Location"]
        parts = urlsplit(location)
        assert not parts.scheme and not parts.netloc, f"off-site redirect: {location}"
        assert location.startswith("/") and not re.match(r"^/[/\\]", location), location


def token_valid_values(world: World) -> dict[str, list[str]]:
    return {
        # Mostly the grants we support, so requests reach their checks.
        "grant_type": list(GRANT_TYPES[:3]) * 4 + list(GRANT_TYPES[3:]),
        "code": [world.used_code],
        "redirect_uri": [REDIRECT_URI],
        "code_verifier": [world.verifier],
        "refresh_token": [world.refresh_token],
        "scope": ["openid", "api:read", "openid offline_access"],
        "resource": ["https://api.example.com/"],
        "client_id": [world.rp_id, world.spa_id, world.service_id],
        "client_secret": [world.rp_secret, world.service_secret],
    }


@FUZZ
@given(data=st.data())
def test_token_endpoint_answers_every_request_with_a_token_or_a_spec_error(
    world: World, data: st.DataObject
) -> None:
    optional = frozenset({"scope", "resource", "client_id", "client_secret"})
    params = fuzz_params(data, token_valid_values(world), TOKEN_NAMES, optional)
    response = world.signed_out.post(
        "/oauth2/token", headers=auth_headers(data, world), **post_body(data, params)
    )
    no_server_error(response)
    assert response.headers.get("Cache-Control") == "no-store" or response.status_code == 413
    if response.status_code == 200:
        body = response.get_json()
        assert body["access_token"] and body["token_type"] == "Bearer", body
        return
    assert response.status_code in (400, 401, 413), response.status_code
    error = json_error(response, TOKEN_ERRORS)
    if response.status_code == 401:
        assert error == "invalid_client"


def endpoint_request(
    data: st.DataObject, world: World, path: str
) -> tuple[TestResponse, list[tuple[str, str]]]:
    valid = {
        "token": [world.access_token, world.refresh_token, world.used_code],
        "token_type_hint": ["access_token", "refresh_token", "id_token"],
        "client_id": [world.rp_id, world.spa_id, world.service_id],
        "client_secret": [world.rp_secret, world.service_secret],
    }
    optional = frozenset({"token_type_hint", "client_id", "client_secret"})
    params = fuzz_params(data, valid, tuple(valid), optional)
    response = world.signed_out.post(
        path, headers=auth_headers(data, world), **post_body(data, params)
    )
    return response, params


@FUZZ
@given(data=st.data())
def test_revocation_answers_200_or_a_spec_error(world: World, data: st.DataObject) -> None:
    response, _ = endpoint_request(data, world, "/oauth2/revoke")
    no_server_error(response)
    if response.status_code == 200:
        return
    assert response.status_code in (400, 401, 413), response.status_code
    json_error(response, REVOCATION_ERRORS)


@FUZZ
@given(data=st.data())
def test_introspection_answers_active_or_a_spec_error(world: World, data: st.DataObject) -> None:
    response, params = endpoint_request(data, world, "/oauth2/introspect")
    no_server_error(response)
    if response.status_code == 200:
        body = response.get_json()
        assert isinstance(body.get("active"), bool), body
        if body["active"]:
            live = {world.access_token, world.refresh_token}
            assert any(value in live for name, value in params if name == "token"), body
        return
    assert response.status_code in (400, 401, 413), response.status_code
    json_error(response, INTROSPECTION_ERRORS)


@FUZZ
@given(data=st.data())
def test_userinfo_answers_claims_or_a_bearer_error(world: World, data: st.DataObject) -> None:
    valid = {"access_token": [world.access_token]}
    params = fuzz_params(data, valid, ("access_token",), frozenset({"access_token"}))
    headers = auth_headers(data, world)
    send: Callable[..., TestResponse]
    if data.draw(st.booleans(), label="POST"):
        send = world.signed_out.post
        kwargs = post_body(data, params)
    else:
        send = world.signed_out.get
        kwargs = {"query_string": params}
    response = send("/userinfo", headers=headers, **kwargs)
    no_server_error(response)
    if response.status_code == 200:
        assert response.get_json()["sub"]
        return
    assert response.status_code in (400, 401, 403, 413), response.status_code
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if not response.data:
            return
    json_error(response, BEARER_ERRORS)


def test_fuzz_fixture_tokens_are_live(world: World) -> None:
    """The fuzzers' valid values really are valid, so the properties above reach deep."""
    response = world.signed_out.get(
        "/userinfo", headers={"Authorization": f"Bearer {world.access_token}"}
    )
    assert response.status_code == 200
    introspected = world.signed_out.post(
        "/oauth2/introspect",
        data={"token": world.refresh_token},
        headers=basic(world.rp_id, world.rp_secret),
    )
    assert introspected.get_json()["active"] is True


# Cases the fuzzers found, pinned so they stay fixed whatever Hypothesis draws next time.


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic",
        "Basic ",
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic " + base64.b64encode(b"\x00:x").decode(),
    ],
)
@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"])
def test_malformed_basic_credentials_are_invalid_client(
    world: World, path: str, authorization: str
) -> None:
    data = {"grant_type": "client_credentials", "token": world.access_token}
    response = world.signed_out.post(path, data=data, headers={"Authorization": authorization})
    assert response.status_code in (400, 401), response.data
    assert json_error(response, TOKEN_ERRORS) == "invalid_client"


def test_nul_in_the_nonce_is_refused_with_a_redirect(world: World) -> None:
    """The nonce is stored with the code, and PostgreSQL cannot store NUL."""
    _, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": world.rp_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "xyz",
        "nonce": "\x00",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    response = world.signed_in.get("/authorize", query_string=params)
    assert response.status_code == 302
    got = location_params(response.headers["Location"])
    assert got["error"] == ["invalid_request"] and got["state"] == ["xyz"]


@pytest.mark.parametrize("resource", ['"', "\\", "https://api.example.com/é", "x" * 300])
def test_unregistered_resource_with_any_characters_is_invalid_target(
    world: World, resource: str
) -> None:
    response = world.signed_out.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "resource": resource},
        headers=basic(world.service_id, world.service_secret),
    )
    assert response.status_code == 400, response.data
    assert json_error(response, TOKEN_ERRORS) == "invalid_target"
