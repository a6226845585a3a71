"""RFC 6749 section 5.2 at the token endpoint (and 4.1.2.1 at /authorize): the right error
code for each mistake, described in the client's terms, and never a hint whether a
client_id exists.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from authserver.extensions import db
from authserver.oauth.client_auth import NO_CREDENTIALS, NO_SECRET, SECRET_REQUIRED, WRONG_SECRET
from authserver.oauth.grants.authorization_code import EXPIRED_CODE, INVALID_CODE
from authserver.oauth.models import AuthorizationCode
from tests.factories import make_client, make_user
from tests.oauth_helpers import (
    authorize_params,
    basic,
    exchange,
    get_code,
    pkce_pair,
    query,
    sign_in,
)

TOKEN = "/oauth2/token"


@pytest.fixture
def rp(app: Flask) -> tuple[Any, str]:
    make_user()
    client, secret = make_client()
    assert secret is not None
    return client, secret


@pytest.fixture
def service(app: Flask) -> tuple[Any, str]:
    """A client_credentials client registered for `api:read api:write`."""
    client, secret = make_client(
        name="Service",
        redirect_uris=(),
        grant_types=("client_credentials",),
        scope="api:read api:write",
    )
    assert secret is not None
    return client, secret


def error_of(response: Any) -> tuple[int, str, str | None]:
    body = response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    return response.status_code, body["error"], body.get("error_description")


# grant_type


@pytest.mark.parametrize("form", [{}, {"grant_type": ""}, {"scope": "api:read"}])
def test_a_request_without_grant_type_is_invalid_request(
    client: FlaskClient, service, form: dict[str, str]
) -> None:
    response = client.post(TOKEN, data=form, headers=basic(service[0].client_id, service[1]))
    assert error_of(response) == (400, "invalid_request", "Missing 'grant_type' parameter.")


def test_without_grant_type_and_without_client_authentication_too(client: FlaskClient) -> None:
    assert error_of(client.post(TOKEN, data={}))[:2] == (400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:example:unknown"])
def test_an_unknown_grant_type_is_still_unsupported_grant_type(
    client: FlaskClient, service, grant_type: str
) -> None:
    response = client.post(
        TOKEN, data={"grant_type": grant_type}, headers=basic(service[0].client_id, service[1])
    )
    assert error_of(response)[:2] == (400, "unsupported_grant_type")


# client_credentials scope (RFC 6749 section 3.3)


def client_credentials(client: FlaskClient, service: tuple[Any, str], **form: str) -> Any:
    data = {"grant_type": "client_credentials", **form}
    return client.post(TOKEN, data=data, headers=basic(service[0].client_id, service[1]))


def test_asking_only_for_unregistered_scopes_is_invalid_scope(client: FlaskClient, service) -> None:
    response = client_credentials(client, service, scope="admin api:delete")
    status, error, description = error_of(response)
    assert (status, error) == (400, "invalid_scope")
    assert description == "None of the requested scopes is registered for this client."


def test_asking_for_some_unregistered_scopes_grants_the_registered_ones_and_says_so(
    client: FlaskClient, service
) -> None:
    response = client_credentials(client, service, scope="api:delete api:write")
    assert response.status_code == 200, response.text
    assert response.get_json()["scope"] == "api:write"


@pytest.mark.parametrize("form", [{}, {"scope": ""}])
def test_asking_for_no_scope_grants_the_registered_ones(
    client: FlaskClient, service, form: dict[str, str]
) -> None:
    response = client_credentials(client, service, **form)
    assert response.status_code == 200, response.text
    assert response.get_json()["scope"] == "api:read api:write"


# Client authentication (RFC 6749 section 2.3 and 5.2 invalid_client)


def test_a_wrong_secret_says_client_authentication_failed(client: FlaskClient, service) -> None:
    response = client_credentials(client, (service[0], "not-the-secret"))
    assert error_of(response) == (401, "invalid_client", WRONG_SECRET)
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "methods" not in response.text


def test_an_unknown_client_reads_exactly_as_a_wrong_secret(client: FlaskClient, service) -> None:
    wrong = client_credentials(client, (service[0], "not-the-secret"))
    unknown = client_credentials(client, (type("C", (), {"client_id": "nobody"}), "x"))
    assert error_of(unknown) == error_of(wrong)
    assert unknown.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]

    form = {"grant_type": "client_credentials", "client_secret": "x"}
    posted_unknown = client.post(TOKEN, data={**form, "client_id": "nobody"})
    posted_wrong = client.post(TOKEN, data={**form, "client_id": service[0].client_id})
    assert (
        error_of(posted_unknown) == error_of(posted_wrong) == (401, "invalid_client", WRONG_SECRET)
    )


def test_a_client_id_without_a_secret_reads_the_same_known_or_not(
    client: FlaskClient, rp, service
) -> None:
    for client_id in (rp[0].client_id, "nobody"):
        refresh = client.post(
            TOKEN,
            data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": client_id},
        )
        assert error_of(refresh) == (401, "invalid_client", NO_SECRET)
    for client_id in (service[0].client_id, "nobody"):
        own = client.post(TOKEN, data={"grant_type": "client_credentials", "client_id": client_id})
        assert error_of(own) == (401, "invalid_client", SECRET_REQUIRED)


def test_no_credentials_at_all(client: FlaskClient) -> None:
    response = client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert error_of(response) == (401, "invalid_client", NO_CREDENTIALS)


def test_a_client_using_a_method_it_did_not_register_is_told_which_it_registered(
    client: FlaskClient, service
) -> None:
    posted = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": service[0].client_id,
            "client_secret": service[1],
        },
    )
    assert error_of(posted) == (
        401,
        "invalid_client",
        "The client is registered for token_endpoint_auth_method client_secret_basic, "
        "but authenticated with client_secret_post.",
    )
    poster, poster_secret = make_client(
        name="Poster",
        redirect_uris=(),
        grant_types=("client_credentials",),
        scope="api:read",
        auth_method="client_secret_post",
    )
    assert poster_secret is not None
    by_basic = client_credentials(client, (poster, poster_secret))
    assert error_of(by_basic)[2] == (
        "The client is registered for token_endpoint_auth_method client_secret_post, "
        "but authenticated with client_secret_basic."
    )


def test_the_registered_method_is_told_only_to_a_client_that_proved_its_secret(
    client: FlaskClient, service
) -> None:
    """A wrong secret by the wrong method says nothing about the client (it may not exist)."""
    response = client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": service[0].client_id,
            "client_secret": "guess",
        },
    )
    assert error_of(response) == (401, "invalid_client", WRONG_SECRET)


def test_other_endpoints_describe_failures_the_same_way(client: FlaskClient, rp) -> None:
    for path in ("/oauth2/revoke", "/oauth2/introspect"):
        wrong = client.post(path, data={"token": "x"}, headers=basic(rp[0].client_id, "nope"))
        unknown = client.post(path, data={"token": "x"}, headers=basic("nobody", "nope"))
        assert error_of(wrong) == error_of(unknown) == (401, "invalid_client", WRONG_SECRET)


# Authorization codes (RFC 6749 section 4.1.3, 5.2 invalid_grant)


def code_for(client: FlaskClient, rp: tuple[Any, str]) -> tuple[str, str]:
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp[0].client_id, challenge)
    return code, verifier


def test_an_expired_code_says_it_expired(client: FlaskClient, rp) -> None:
    code, verifier = code_for(client, rp)
    row = db.session.scalars(select(AuthorizationCode)).one()
    row.expires_at = row.expires_at - timedelta(hours=1)
    db.session.commit()

    response = exchange(client, rp[0].client_id, rp[1], code, verifier)

    assert error_of(response) == (400, "invalid_grant", EXPIRED_CODE)


def test_an_expired_code_of_another_client_reads_as_unknown(client: FlaskClient, rp) -> None:
    other, other_secret = make_client(name="Other")
    code, verifier = code_for(client, rp)
    row = db.session.scalars(select(AuthorizationCode)).one()
    row.expires_at = row.expires_at - timedelta(hours=1)
    db.session.commit()

    response = exchange(client, other.client_id, other_secret, code, verifier)

    assert error_of(response) == (400, "invalid_grant", INVALID_CODE)


def test_an_unknown_or_used_code_says_so(client: FlaskClient, rp) -> None:
    code, verifier = code_for(client, rp)
    assert exchange(client, rp[0].client_id, rp[1], code, verifier).status_code == 200

    used = exchange(client, rp[0].client_id, rp[1], code, verifier)
    unknown = exchange(client, rp[0].client_id, rp[1], "no-such-code", verifier)

    assert error_of(used) == error_of(unknown) == (400, "invalid_grant", INVALID_CODE)
    assert "expired" not in INVALID_CODE


# /authorize (RFC 6749 section 4.1.2.1)


def test_an_unsupported_response_type_names_the_supported_one(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp[0].client_id, challenge, response_type="token")

    response = client.get("/authorize", query_string=params)

    assert response.status_code == 302
    answer = query(response)
    assert answer["error"] == "unsupported_response_type"
    assert answer["error_description"] == (
        "Unsupported response_type: this server supports only 'code'."
    )
    assert answer["state"] == params["state"]


def test_an_unsupported_response_type_for_an_unknown_client_is_not_redirected(
    client: FlaskClient,
) -> None:
    _, challenge = pkce_pair()
    params = authorize_params("nobody", challenge, response_type='to"ken')

    response = client.get("/authorize", query_string=params)

    assert response.status_code == 400 and "Location" not in response.headers
    assert "this server supports only" in response.text


def test_a_missing_response_type_is_invalid_request(client: FlaskClient, rp) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(rp[0].client_id, challenge, response_type=None)

    response = client.get("/authorize", query_string=params)

    assert response.status_code == 302
    answer = query(response)
    assert answer["error"] == "invalid_request"
    assert answer["error_description"] == "Missing 'response_type' parameter."
    assert answer["state"] == params["state"]
