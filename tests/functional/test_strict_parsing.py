"""Strict parsing: size and parameter limits; repeated OAuth parameters refused, unknown ignored.

RFC 6749 section 3.1: "Parameters sent without a value MUST be treated as if they were
omitted from the request. The authorization server MUST ignore unrecognized request
parameters. Request and response parameters MUST NOT be included more than once."
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import MultiDict

from authserver.security.limits import MAX_PARAMETERS, MAX_VALUE_LENGTH
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import authorize_params, basic, exchange, get_code, pkce_pair, sign_in

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def service(app: Flask) -> tuple[str, str]:
    """A confidential client that may use client credentials and the device grant."""
    client, secret = make_client(
        name="Service",
        redirect_uris=(),
        grant_types=("client_credentials", DEVICE_GRANT),
        scope="openid api:read api:write",
        resources=["https://api.example.com/", "https://other.example.com/"],
    )
    assert secret is not None
    return client.client_id, secret


def client_token(client: FlaskClient, service: tuple[str, str]) -> str:
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "api:read"},
        headers=basic(*service),
    )
    assert response.status_code == 200, response.data
    return str(response.get_json()["access_token"])


def assert_invalid_request(response, mentions: str = "") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 400, response.data
    body = response.get_json()
    assert body["error"] == "invalid_request", body
    assert mentions in body.get("error_description", "")
    assert response.headers["Cache-Control"] == "no-store"


# RFC 6749 section 3.1: repeated parameters.


@pytest.mark.parametrize("name", ["grant_type", "scope", "client_id", "client_secret"])
def test_the_token_endpoint_refuses_a_repeated_parameter(
    client: FlaskClient, service: tuple[str, str], name: str
) -> None:
    params = MultiDict([("grant_type", "client_credentials"), ("scope", "api:read")])
    params.add(name, params.get(name) or "x")
    params.add(name, params.getlist(name)[0])
    response = client.post("/oauth2/token", data=params, headers=basic(*service))
    assert_invalid_request(response, f"'{name}'")


def test_a_repeated_code_is_refused_and_the_code_stays_redeemable(client: FlaskClient) -> None:
    """Refused before any check: the code is not consumed by the malformed request."""
    make_user()
    rp, secret = make_client()
    assert secret is not None
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp.client_id, challenge)
    twice = MultiDict(
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ]
    )
    refused = client.post("/oauth2/token", data=twice, headers=basic(rp.client_id, secret))
    assert_invalid_request(refused, "'code'")
    assert exchange(client, rp.client_id, secret, code, verifier).status_code == 200


@pytest.mark.parametrize("path", ["/oauth2/revoke", "/oauth2/introspect"])
@pytest.mark.parametrize("name", ["token", "token_type_hint"])
def test_revocation_and_introspection_refuse_a_repeated_parameter(
    client: FlaskClient, service: tuple[str, str], path: str, name: str
) -> None:
    token = client_token(client, service)
    params = MultiDict([("token", token), ("token_type_hint", "access_token")])
    params.add(name, params[name])
    response = client.post(path, data=params, headers=basic(*service))
    assert_invalid_request(response, f"'{name}'")
    # The token was not revoked by the refused request.
    active = client.post("/oauth2/introspect", data={"token": token}, headers=basic(*service))
    assert active.get_json()["active"] is True


def test_the_device_authorization_endpoint_refuses_a_repeated_scope(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    params = MultiDict([("scope", "openid"), ("scope", "api:read")])
    response = client.post("/oauth2/device_authorization", data=params, headers=basic(*service))
    assert_invalid_request(response, "'scope'")


def test_a_repeated_parameter_in_the_query_and_the_body_is_refused(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    response = client.post(
        "/oauth2/token?grant_type=client_credentials",
        data={"grant_type": "client_credentials"},
        headers=basic(*service),
    )
    assert_invalid_request(response, "'grant_type'")


def test_repeated_resource_is_legal_at_the_token_endpoint(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    """RFC 8707 section 2: `resource` MAY be repeated to name several resources."""
    params = MultiDict(
        [
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("resource", "https://api.example.com/"),
            ("resource", "https://other.example.com/"),
        ]
    )
    response = client.post("/oauth2/token", data=params, headers=basic(*service))
    assert response.status_code == 200, response.data


def test_repeated_resource_is_legal_at_the_authorization_endpoint(client: FlaskClient) -> None:
    make_user()
    rp, _ = make_client(
        skip_consent=True, resources=["https://api.example.com/", "https://other.example.com/"]
    )
    sign_in(client)
    _, challenge = pkce_pair()
    params = MultiDict(authorize_params(rp.client_id, challenge))
    params.add("resource", "https://api.example.com/")
    params.add("resource", "https://other.example.com/")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert "code=" in response.headers["Location"], response.headers["Location"]


def test_the_authorization_endpoint_refuses_a_repeated_parameter(client: FlaskClient) -> None:
    """Which redirect_uri would be trusted is unclear, so the answer is a page, not a redirect."""
    make_user()
    rp, _ = make_client(skip_consent=True)
    sign_in(client)
    _, challenge = pkce_pair()
    params = MultiDict(authorize_params(rp.client_id, challenge))
    params.add("nonce", "another")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Multiple" in response.text


# RFC 6749 section 3.1: unknown parameters are ignored, even repeated.


def test_unknown_parameters_are_ignored_at_the_token_endpoint(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    params = MultiDict(
        [
            ("grant_type", "client_credentials"),
            ("scope", "api:read"),
            ("unknown", "1"),
            ("unknown", "2"),
            ("x-vendor-extension", "yes"),
        ]
    )
    response = client.post("/oauth2/token", data=params, headers=basic(*service))
    assert response.status_code == 200, response.data


def test_unknown_parameters_are_ignored_at_revocation_and_introspection(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    token = client_token(client, service)
    data = MultiDict([("token", token), ("foo", "1"), ("foo", "2")])
    introspected = client.post("/oauth2/introspect", data=data, headers=basic(*service))
    assert introspected.get_json()["active"] is True
    assert client.post("/oauth2/revoke", data=data, headers=basic(*service)).status_code == 200


def test_unknown_parameters_are_ignored_at_the_authorization_endpoint(
    client: FlaskClient,
) -> None:
    make_user()
    rp, _ = make_client(skip_consent=True)
    sign_in(client)
    _, challenge = pkce_pair()
    params = MultiDict(authorize_params(rp.client_id, challenge, foo="bar"))
    params.add("foo", "baz")
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert "code=" in response.headers["Location"]


# Request limits: body size, parameter count, value length.


def test_a_body_over_64_kib_is_refused_with_413(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    response = client.post(
        "/oauth2/token",
        data=b"grant_type=client_credentials&pad=" + b"a" * (64 * 1024),
        content_type="application/x-www-form-urlencoded",
        headers=basic(*service),
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "invalid_request"


def test_a_page_refuses_a_body_over_64_kib_with_the_error_page(client: FlaskClient) -> None:
    response = client.post(
        "/login",
        data=b"email=" + b"a" * (65 * 1024),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert response.mimetype == "text/html"


def test_too_many_multipart_parts_are_refused(client: FlaskClient) -> None:
    """Werkzeug's MAX_FORM_PARTS caps multipart parsing work."""
    fields = {f"f{i}": "x" for i in range(250)}
    response = client.post("/oauth2/token", data=fields, content_type="multipart/form-data")
    assert response.status_code == 413


@pytest.mark.parametrize("where", ["query", "form"])
def test_more_than_the_maximum_number_of_parameters_is_invalid_request(
    client: FlaskClient, service: tuple[str, str], where: str
) -> None:
    params = MultiDict([("grant_type", "client_credentials")])
    for i in range(MAX_PARAMETERS):
        params.add(f"p{i}", "x")
    if where == "query":
        response = client.post("/oauth2/token", query_string=params, headers=basic(*service))
    else:
        response = client.post("/oauth2/token", data=params, headers=basic(*service))
    assert_invalid_request(response, "Too many parameters")


def test_the_maximum_number_of_parameters_is_accepted(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    params = MultiDict([("grant_type", "client_credentials")])
    for i in range(MAX_PARAMETERS - 1):
        params.add(f"p{i}", "x")
    response = client.post("/oauth2/token", data=params, headers=basic(*service))
    assert response.status_code == 200, response.data


def test_a_parameter_value_over_the_limit_is_invalid_request(
    client: FlaskClient, service: tuple[str, str]
) -> None:
    response = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "a" * (MAX_VALUE_LENGTH + 1)},
        headers=basic(*service),
    )
    assert_invalid_request(response, "longer than")


def test_a_parameter_name_over_the_limit_is_invalid_request(client: FlaskClient) -> None:
    response = client.get("/userinfo", query_string={"a" * (MAX_VALUE_LENGTH + 1): "1"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_a_page_refuses_an_oversized_value_with_the_error_page(client: FlaskClient) -> None:
    response = client.get("/login", query_string={"next": "/" + "a" * MAX_VALUE_LENGTH})
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "longer than" in response.text


def test_an_oversized_authorization_request_gets_a_page_and_no_redirect(
    client: FlaskClient,
) -> None:
    """Nothing about the client is trusted yet, so nothing is redirected (RFC 9700 4.11)."""
    rp, _ = make_client()
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, state="s" * (MAX_VALUE_LENGTH + 1))
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_a_value_at_the_limit_is_accepted(client: FlaskClient, service: tuple[str, str]) -> None:
    token = client_token(client, service)
    response = client.post(
        "/oauth2/introspect",
        data={"token": token, "ignored": "a" * MAX_VALUE_LENGTH},
        headers=basic(*service),
    )
    assert response.get_json()["active"] is True
