"""RFC 6749 section 4.4: our client_credentials hot path answers as Authlib's stock grant does.

The same request goes to the token endpoint (`oauth/endpoints/token.py` with
`grants/client_credentials.py`) and to Authlib's generic pipeline
(`AuthorizationServer.create_token_response` with the stock `ClientCredentialsGrant`),
wired on the same server class, client store, client authentication methods and token
contents. Status, error code, token_type, expires_in, scope and the caching headers must
be equal; only the token values differ, and a request without grant_type, which RFC 6749
section 5.2 calls invalid_request where Authlib says unsupported_grant_type. RFC 8707
`resource` is ours alone (stock Authlib has no resource indicators):
tests/functional/test_client_credentials.py covers it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer as StockFlaskServer
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant as StockClientCredentialsGrant
from flask import Flask, Response
from werkzeug.datastructures import MultiDict

from authserver.clients.cache import invalidate_client_cache
from authserver.extensions import db
from authserver.oauth.grants.client_credentials import ClientCredentialsGrant, generate_token
from authserver.oauth.server import AuthorizationServer, tolerant_client_secret_basic
from tests.factories import make_client
from tests.oauth_helpers import basic

FORM = "application/x-www-form-urlencoded"
COMPARED_HEADERS = ("Content-Type", "Cache-Control", "Pragma", "WWW-Authenticate")


class StockGrant(StockClientCredentialsGrant):
    """Authlib's grant as it ships, accepting the same authentication methods as ours."""

    TOKEN_ENDPOINT_AUTH_METHODS = ClientCredentialsGrant.TOKEN_ENDPOINT_AUTH_METHODS


def stock_token_contents(grant_type: str, client: Any, user: Any = None, **kwargs: Any) -> Any:
    """Authlib's token generator hook, filled by the same function as ours."""
    return generate_token(client, kwargs.get("scope"), [])


@pytest.fixture
def stock_server(app: Flask) -> AuthorizationServer:
    server = AuthorizationServer()
    server.init_app(app)
    server.register_client_auth_method("client_secret_basic", tolerant_client_secret_basic)
    # Authlib's own registry (not ours by grant_type): the stock pipeline walks it.
    StockFlaskServer.register_grant(server, StockGrant)
    server.register_token_generator("client_credentials", stock_token_contents)
    return server


@pytest.fixture
def clients(app: Flask) -> Iterator[dict[str, tuple[str, str]]]:
    made = {
        "basic": make_client(
            name="Basic", redirect_uris=[], grant_types=["client_credentials"], scope="a b"
        ),
        "post": make_client(
            name="Post",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scope="a b",
            auth_method="client_secret_post",
        ),
        "code_only": make_client(name="Code only"),
        "public": make_client(
            name="Public", auth_method="none", grant_types=["authorization_code"]
        ),
        "disabled": make_client(
            name="Disabled", redirect_uris=[], grant_types=["client_credentials"], scope="a"
        ),
    }
    made["disabled"][0].is_active = False
    db.session.commit()
    invalidate_client_cache(made["disabled"][0].client_id)
    yield {name: (row.client_id, secret or "") for name, (row, secret) in made.items()}


def post_form(client: tuple[str, str], **data: Any) -> dict[str, Any]:
    """client_secret_post: the credentials in the form."""
    return {"data": {"client_id": client[0], "client_secret": client[1], **data}}


def cases(c: dict[str, tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Each request as keyword arguments of `test_request_context`."""
    cc = {"grant_type": "client_credentials"}
    auth = basic(*c["basic"])
    return {
        "basic, scope": {"data": {**cc, "scope": "a"}, "headers": auth},
        "basic, no scope": {"data": cc, "headers": auth},
        "basic, empty scope": {"data": {**cc, "scope": ""}, "headers": auth},
        "basic, scope partly registered": {"data": {**cc, "scope": "b zz a"}, "headers": auth},
        "basic, scope not registered": {"data": {**cc, "scope": "zz"}, "headers": auth},
        "post, scope": post_form(c["post"], **cc, scope="b"),
        "wrong secret, basic": {"data": cc, "headers": basic(c["basic"][0], "nope")},
        "wrong secret, post": post_form((c["post"][0], "nope"), **cc),
        "unknown client, basic": {"data": cc, "headers": basic("nobody", "x")},
        "unknown client, post": post_form(("nobody", "x"), **cc),
        "no authentication": {"data": cc},
        "client_id only": {"data": {**cc, "client_id": c["basic"][0]}},
        "basic for a post client": {"data": cc, "headers": basic(*c["post"])},
        "post for a basic client": post_form(c["basic"], **cc),
        "Basic without credentials": {"data": cc, "headers": {"Authorization": "Basic"}},
        "Basic not base64": {"data": cc, "headers": {"Authorization": "Basic !!!"}},
        "Basic without colon": {
            "data": cc,
            "headers": {"Authorization": "Basic " + base64.b64encode(b"abc").decode()},
        },
        "Basic not UTF-8": {
            "data": cc,
            "headers": {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},
        },
        "public client": {"data": {**cc, "client_id": c["public"][0]}},
        "grant type not registered": {"data": cc, "headers": basic(*c["code_only"])},
        "disabled client": {"data": cc, "headers": basic(*c["disabled"])},
        "missing grant_type": {"data": {"scope": "a"}, "headers": auth},
        "unknown grant_type": {"data": {"grant_type": "password"}, "headers": auth},
        "repeated grant_type": {
            "data": MultiDict([("grant_type", "client_credentials")] * 2),
            "headers": auth,
        },
        "repeated scope": {
            "data": MultiDict([*cc.items(), ("scope", "a"), ("scope", "b")]),
            "headers": auth,
        },
        "repeated client_secret": {
            "data": MultiDict([*post_form(c["post"], **cc)["data"].items(), ("client_secret", "x")])
        },
        "JSON body": {
            "json": {**cc, "scope": "a"},
            "headers": auth,
        },
        "text body": {
            "data": "grant_type=client_credentials",
            "content_type": "text/plain",
            "headers": auth,
        },
        "NUL in scope": {"data": {**cc, "scope": "a\x00"}, "headers": auth},
        "NUL in secret": post_form((c["post"][0], c["post"][1] + "\x00"), **cc),
        "NUL in client_id": {"data": cc, "headers": basic(c["basic"][0] + "\x00", "x")},
        "grant_type in the query string": {
            "query_string": cc,
            "data": {"scope": "a"},
            "headers": auth,
        },
    }


# Requests whose form holds no grant_type (the one deliberate difference from the stock grant).
WITHOUT_GRANT_TYPE = ("missing grant_type", "JSON body", "text body")
CASE_NAMES = list(
    cases({name: ("id", "secret") for name in ("basic", "post", "code_only", "public", "disabled")})
)


def answer(app: Flask, respond: Any, request: dict[str, Any]) -> Response:
    with app.test_request_context("/oauth2/token", method="POST", **request):
        response: Response = respond()
    db.session.rollback()
    return response


def comparable(response: Response) -> dict[str, Any]:
    body = response.get_json(silent=True)
    assert isinstance(body, dict), response.get_data(as_text=True)
    if "access_token" in body:
        assert isinstance(body.pop("access_token"), str)
    return {
        "status": response.status_code,
        "body": body,
        "headers": {name: response.headers.get(name) for name in COMPARED_HEADERS},
    }


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_hot_path_answers_as_authlibs_stock_grant(
    app: Flask, clients: dict[str, tuple[str, str]], stock_server: AuthorizationServer, name: str
) -> None:
    request = cases(clients)[name]
    ours = app.extensions["authserver.oauth"]

    def stock() -> Response:
        refused = stock_server.refuse_repeated_parameters("token")
        if refused is not None:
            return refused
        response: Response = StockFlaskServer.create_token_response(stock_server)
        return response

    expected = comparable(answer(app, stock, request))
    if name in WITHOUT_GRANT_TYPE:
        # RFC 6749 section 5.2: a missing grant_type is invalid_request; Authlib's stock
        # pipeline answers unsupported_grant_type. The rest of the answer is the same.
        assert expected["body"] == {"error": "unsupported_grant_type"}
        expected["body"] = {
            "error": "invalid_request",
            "error_description": "Missing 'grant_type' parameter.",
        }
    assert comparable(answer(app, ours.create_token_response, request)) == expected


def test_the_cases_cover_success_and_every_error(
    app: Flask, clients: dict[str, tuple[str, str]]
) -> None:
    ours = app.extensions["authserver.oauth"]
    seen = {
        comparable(answer(app, ours.create_token_response, request))["body"].get("error")
        for request in cases(clients).values()
    }
    assert seen == {
        None,
        "invalid_client",
        "invalid_request",
        "invalid_scope",
        "unauthorized_client",
        "unsupported_grant_type",
    }
