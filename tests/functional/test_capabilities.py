"""What discovery advertises works, and what it does not advertise is refused.

The registry (authserver/core/capabilities.py) is the one list of what the server
supports; discovery, client validation, the token endpoint, the rate limiter and CORS
read it. These tests walk the published document and try every capability in it, then
try the well-known capabilities it leaves out and expect the spec's error for each.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authserver.clients.services import ClientError
from authserver.core import capabilities
from authserver.core.capabilities import (
    CLIENT_CREDENTIALS,
    CLIENT_SECRET_BASIC,
    CLIENT_SECRET_POST,
    DEVICE_CODE,
    NONE,
    REFRESH_TOKEN,
)
from authserver.security.ratelimit import check_endpoint_classes, unclassified_endpoints
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.functional.test_device_flow import approve
from tests.oauth_helpers import authorize_params, basic, get_code, pkce_pair, query, sign_in

DISCOVERY = "/.well-known/openid-configuration"


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    body: dict[str, Any] = client.get(DISCOVERY).get_json()
    return body


def authenticated(method: str, client_id: str, secret: str | None, **data: str) -> dict[str, Any]:
    """Keyword arguments for `client.post`: the request, authenticated by `method`."""
    if method == CLIENT_SECRET_BASIC:
        assert secret is not None
        return {"data": data, "headers": basic(client_id, secret)}
    if method == CLIENT_SECRET_POST:
        assert secret is not None
        return {"data": {**data, "client_id": client_id, "client_secret": secret}}
    return {"data": {**data, "client_id": client_id}}


def tokens_by_code(
    app: Flask, client: FlaskClient, method: str, grant_types: tuple[str, ...]
) -> tuple[Any, str | None, dict[str, Any]]:
    """A client registered with `method` runs the code flow; its client, secret and tokens."""
    make_user()
    rp, secret = make_client(auth_method=method, grant_types=grant_types)
    browser = app.test_client()
    sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    response = client.post(
        "/oauth2/token",
        **authenticated(
            method,
            rp.client_id,
            secret,
            grant_type="authorization_code",
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        ),
    )
    assert response.status_code == 200, response.text
    return rp, secret, response.get_json()


def authorize(browser: FlaskClient, client_id: str, **extra: Any) -> TestResponse:
    _, challenge = pkce_pair()
    return browser.get("/authorize", query_string=authorize_params(client_id, challenge, **extra))


# The registry and the app agree.


def test_discovery_advertises_exactly_the_registry(document: dict[str, Any]) -> None:
    assert document["token_endpoint_auth_methods_supported"] == list(
        capabilities.CLIENT_AUTH_METHODS
    )
    assert document["grant_types_supported"] == list(capabilities.GRANT_TYPES)
    assert document["response_types_supported"] == list(capabilities.RESPONSE_TYPES)
    assert document["response_modes_supported"] == list(capabilities.RESPONSE_MODES)
    assert document["prompt_values_supported"] == list(capabilities.PROMPT_VALUES)
    assert document["code_challenge_methods_supported"] == list(capabilities.CODE_CHALLENGE_METHODS)
    assert document["id_token_signing_alg_values_supported"] == list(
        capabilities.ID_TOKEN_SIGNING_ALGS
    )
    for endpoint in capabilities.ENDPOINTS:
        if endpoint.auth_methods_metadata:
            assert document[endpoint.auth_methods_metadata] == list(endpoint.auth_methods)


def test_every_registered_endpoint_is_served_where_the_registry_says(app: Flask) -> None:
    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    for endpoint in capabilities.ENDPOINTS:
        assert endpoint.name in rules, endpoint.name
        if endpoint.path is not None:
            assert rules[endpoint.name] == endpoint.path, endpoint.name


def test_every_protocol_endpoint_has_a_rate_limit_class(app: Flask) -> None:
    assert unclassified_endpoints(app) == []


def test_a_new_protocol_endpoint_without_a_rate_limit_class_stops_the_app(
    app_factory: Any,
) -> None:
    app = app_factory()
    app.add_url_rule("/oauth2/par", endpoint="oauth.par", view_func=lambda: "")
    with pytest.raises(RuntimeError, match=r"oauth\.par"):
        check_endpoint_classes(app)


def test_an_unlimited_endpoint_must_say_why() -> None:
    with pytest.raises(ValueError, match="must say why"):
        capabilities.Endpoint("oauth.par", capabilities.RateLimit.NONE)


# Every advertised capability works.


@pytest.mark.parametrize("method", capabilities.CLIENT_AUTH_METHODS)
def test_each_advertised_auth_method_authenticates_at_the_token_endpoint(
    app: Flask, client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert method in document["token_endpoint_auth_methods_supported"]
    rp, secret, tokens = tokens_by_code(app, client, method, ("authorization_code", REFRESH_TOKEN))
    refreshed = client.post(
        "/oauth2/token",
        **authenticated(
            method,
            rp.client_id,
            secret,
            grant_type=REFRESH_TOKEN,
            refresh_token=tokens["refresh_token"],
        ),
    )
    assert refreshed.status_code == 200, refreshed.text


@pytest.mark.parametrize("method", capabilities.CLIENT_AUTH_METHODS)
def test_each_advertised_auth_method_authenticates_at_revocation(
    app: Flask, client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert method in document["revocation_endpoint_auth_methods_supported"]
    rp, secret, tokens = tokens_by_code(app, client, method, ("authorization_code",))
    token = tokens["access_token"]
    response = client.post(
        "/oauth2/revoke", **authenticated(method, rp.client_id, secret, token=token)
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", capabilities.CONFIDENTIAL_AUTH_METHODS)
def test_each_advertised_auth_method_authenticates_at_introspection(
    client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert method in document["introspection_endpoint_auth_methods_supported"]
    rp, secret = make_client(auth_method=method, grant_types=(CLIENT_CREDENTIALS,), scope="api")
    response = client.post(
        "/oauth2/introspect", **authenticated(method, rp.client_id, secret, token="unknown")
    )
    assert response.status_code == 200, response.text
    assert response.get_json() == {"active": False}


@pytest.mark.parametrize("method", capabilities.CONFIDENTIAL_AUTH_METHODS)
def test_client_credentials_works_with_each_confidential_method(
    client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert CLIENT_CREDENTIALS in document["grant_types_supported"]
    rp, secret = make_client(
        redirect_uris=(), auth_method=method, grant_types=(CLIENT_CREDENTIALS,), scope="api"
    )
    response = client.post(
        "/oauth2/token",
        **authenticated(method, rp.client_id, secret, grant_type=CLIENT_CREDENTIALS, scope="api"),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", capabilities.CLIENT_AUTH_METHODS)
def test_the_device_grant_works_with_each_advertised_method(
    app: Flask, client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert DEVICE_CODE in document["grant_types_supported"]
    make_user()
    rp, secret = make_client(redirect_uris=(), auth_method=method, grant_types=(DEVICE_CODE,))
    started = client.post(
        "/oauth2/device_authorization",
        **authenticated(method, rp.client_id, secret, scope="openid"),
    )
    assert started.status_code == 200, started.text
    body = started.get_json()
    browser = app.test_client()
    sign_in(browser)
    approve(browser, body["user_code"])
    tokens = client.post(
        "/oauth2/token",
        **authenticated(
            method, rp.client_id, secret, grant_type=DEVICE_CODE, device_code=body["device_code"]
        ),
    )
    assert tokens.status_code == 200, tokens.text


@pytest.mark.parametrize("mode", capabilities.RESPONSE_MODES)
def test_the_advertised_response_type_mode_and_challenge_method_give_a_code(
    app: Flask, document: dict[str, Any], mode: str
) -> None:
    assert document["response_types_supported"] == ["code"]
    assert document["response_modes_supported"] == ["query", "form_post"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    _, challenge = pkce_pair()
    code, params = get_code(
        browser, rp.client_id, challenge, response_mode=mode, code_challenge_method="S256"
    )
    assert code and params["state"] == "xyz-state"
    assert params["iss"] == document["issuer"]


@pytest.mark.parametrize("prompt", capabilities.PROMPT_VALUES)
def test_each_advertised_prompt_value_is_honoured(
    app: Flask, document: dict[str, Any], prompt: str
) -> None:
    """OIDC Core section 3.1.2.1: what each value asks for happens; none is invalid_request."""
    assert prompt in document["prompt_values_supported"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    _, challenge = pkce_pair()
    get_code(browser, rp.client_id, challenge)  # consent given once
    response = authorize(browser, rp.client_id, prompt=prompt)
    if prompt == capabilities.PROMPT_NONE:
        assert "code" in query(response)
    elif prompt == capabilities.PROMPT_CONSENT:
        assert response.status_code == 200 and "decision" in response.text
    elif prompt == capabilities.PROMPT_SELECT_ACCOUNT:
        assert response.status_code == 200 and 'value="another"' in response.text
    else:  # login: the sign-in page again
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


# Every capability left out is refused with the spec's error.


@pytest.mark.parametrize("method", capabilities.UNSUPPORTED_CLIENT_AUTH_METHODS)
def test_unadvertised_auth_methods_cannot_be_registered(
    app: Flask, client: FlaskClient, document: dict[str, Any], method: str
) -> None:
    assert method not in document["token_endpoint_auth_methods_supported"]
    with pytest.raises(ClientError, match="unsupported token_endpoint_auth_method"):
        make_client(auth_method=method)


@pytest.mark.parametrize(
    "assertion_type",
    ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
)
def test_a_client_assertion_does_not_authenticate(client: FlaskClient, assertion_type: str) -> None:
    """private_key_jwt and client_secret_jwt (RFC 7523 section 2.2) are refused: invalid_client."""
    rp, _ = make_client(redirect_uris=(), grant_types=(CLIENT_CREDENTIALS,), scope="api")
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": CLIENT_CREDENTIALS,
            "client_id": rp.client_id,
            "client_assertion_type": assertion_type,
            "client_assertion": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        },
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "invalid_client"


def test_none_is_refused_where_it_is_not_advertised(
    client: FlaskClient, document: dict[str, Any]
) -> None:
    """RFC 7662 section 2.1 and RFC 6749 section 4.4: public clients neither introspect nor
    use client_credentials."""
    assert NONE not in document["introspection_endpoint_auth_methods_supported"]
    public, _ = make_client(auth_method=NONE)
    response = client.post("/oauth2/introspect", data={"token": "x", "client_id": public.client_id})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    with pytest.raises(ClientError, match="cannot use client_credentials"):
        make_client(auth_method=NONE, grant_types=(CLIENT_CREDENTIALS,))
    response = client.post(
        "/oauth2/token", data={"grant_type": CLIENT_CREDENTIALS, "client_id": public.client_id}
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_client", "unauthorized_client")


@pytest.mark.parametrize("grant_type", capabilities.UNSUPPORTED_GRANT_TYPES)
def test_unadvertised_grant_types_are_refused(
    client: FlaskClient, document: dict[str, Any], grant_type: str
) -> None:
    """RFC 6749 section 5.2: unsupported_grant_type; RFC 7591: not registrable either."""
    assert grant_type not in document["grant_types_supported"]
    with pytest.raises(ClientError, match="unsupported grant_type"):
        make_client(grant_types=(grant_type,))
    rp, secret = make_client()
    assert secret is not None
    response = client.post(
        "/oauth2/token",
        data={"grant_type": grant_type, "username": "a", "password": "b"},
        headers=basic(rp.client_id, secret),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unsupported_grant_type"


def test_a_grant_type_the_client_is_not_registered_for_is_unauthorized_client(
    client: FlaskClient,
) -> None:
    """RFC 6749 section 5.2: an advertised grant type the client did not register."""
    rp, secret = make_client(grant_types=("authorization_code",))
    assert secret is not None
    response = client.post(
        "/oauth2/token",
        data={"grant_type": CLIENT_CREDENTIALS, "scope": "openid"},
        headers=basic(rp.client_id, secret),
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] == "unauthorized_client"


@pytest.mark.parametrize("response_type", capabilities.UNSUPPORTED_RESPONSE_TYPES)
def test_unadvertised_response_types_are_refused(
    app: Flask, document: dict[str, Any], response_type: str
) -> None:
    """RFC 6749 section 4.1.2.1: unsupported_response_type."""
    assert response_type not in document["response_types_supported"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    response = authorize(browser, rp.client_id, response_type=response_type)
    assert error_of_authorization(response) == "unsupported_response_type"


@pytest.mark.parametrize("mode", capabilities.UNSUPPORTED_RESPONSE_MODES)
def test_unadvertised_response_modes_are_refused(
    app: Flask, document: dict[str, Any], mode: str
) -> None:
    assert mode not in document["response_modes_supported"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    response = authorize(browser, rp.client_id, response_mode=mode)
    assert error_of_authorization(response) == "invalid_request"


@pytest.mark.parametrize("prompt", capabilities.UNSUPPORTED_PROMPT_VALUES)
def test_unadvertised_prompt_values_are_refused(
    app: Flask, document: dict[str, Any], prompt: str
) -> None:
    assert prompt not in document["prompt_values_supported"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    response = authorize(browser, rp.client_id, prompt=prompt)
    assert error_of_authorization(response) == "invalid_request"


@pytest.mark.parametrize("method", capabilities.UNSUPPORTED_CODE_CHALLENGE_METHODS)
def test_unadvertised_code_challenge_methods_are_refused(
    app: Flask, document: dict[str, Any], method: str
) -> None:
    """RFC 7636 section 4.4.1: invalid_request."""
    assert method not in document["code_challenge_methods_supported"]
    make_user()
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser)
    response = authorize(browser, rp.client_id, code_challenge_method=method)
    assert error_of_authorization(response) == "invalid_request"


@pytest.mark.parametrize("alg", ["none", "HS256", "PS256"])
def test_unadvertised_id_token_algs_cannot_be_registered(
    document: dict[str, Any], alg: str
) -> None:
    assert alg not in document["id_token_signing_alg_values_supported"]
    with pytest.raises(ClientError):
        make_client(id_token_signed_response_alg=alg)


def error_of_authorization(response: TestResponse) -> str:
    """The `error` of a refused authorization request: by redirect to the client (RFC 6749
    section 4.1.2.1) once the client and redirect_uri are known good."""
    assert response.status_code == 302, response.text
    assert response.headers["Location"].startswith(REDIRECT_URI)
    return query(response)["error"]
