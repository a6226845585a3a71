"""The thin WSGI layer answers the public documents as Flask would, and passes the rest on."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import create_environ

from authserver.core import hotpath
from authserver.keys import current_keyring
from authserver.oidc import discovery

SERVED = (
    "/.well-known/jwks.json",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
)


@dataclass
class Answer:
    """What a WSGI callable answered, as the server saw it."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


def call(wsgi: Any, path: str, method: str = "GET", **kwargs: Any) -> Answer:
    """Call a WSGI callable the way a server does, collecting the whole answer."""
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers=headers)

    iterable = wsgi(create_environ(path, method=method, **kwargs), start_response)
    try:
        body = b"".join(iterable)
    finally:
        if hasattr(iterable, "close"):
            iterable.close()
    return Answer(started["status"], started["headers"], body)


class Flasks:
    """The app's own Flask dispatch behind the thin layer, counting the requests it gets."""

    def __init__(self, app: Flask) -> None:
        self.layer: hotpath.HotPath = app.extensions[hotpath.EXTENSION]
        self.dispatch = self.layer.wsgi_app
        self.paths: list[str] = []
        self.layer.wsgi_app = self.counted

    def counted(self, environ: Any, start_response: Any) -> Any:
        self.paths.append(environ["PATH_INFO"])
        return self.dispatch(environ, start_response)


@pytest.fixture
def flask(app: Flask) -> Iterator[Flasks]:
    flasks = Flasks(app)
    yield flasks
    flasks.layer.wsgi_app = flasks.dispatch


def test_the_layer_sits_in_front_of_flask(app: Flask) -> None:
    assert isinstance(app.wsgi_app, hotpath.HotPath)
    assert sorted(app.extensions[hotpath.EXTENSION].routes) == sorted(SERVED)


def test_the_layer_sits_in_front_of_proxy_fix(app_factory: Any) -> None:
    app = app_factory(proxy_fix=1)

    assert isinstance(app.wsgi_app, hotpath.HotPath)
    assert isinstance(app.wsgi_app.wsgi_app, ProxyFix)


# The thin layer reads no request header: a browser's Origin and cookies change nothing.
BROWSER = {"Origin": "https://rp.example", "Cookie": "authserver_flow=x; authserver_session=y"}


@pytest.mark.parametrize("headers", [{}, BROWSER])
@pytest.mark.parametrize("path", SERVED)
def test_a_served_document_is_answered_as_flask_answers_it(
    app: Flask, flask: Flasks, path: str, headers: dict[str, str]
) -> None:
    thin = call(app.wsgi_app, path, headers=headers)

    assert flask.paths == []
    assert thin == call(flask.dispatch, path, headers=headers)
    assert thin.status == "200 OK"
    assert dict(thin.headers)["Access-Control-Allow-Origin"] == "*"
    assert dict(thin.headers)["X-Content-Type-Options"] == "nosniff"


def test_an_https_issuer_gets_hsts_here_too(app_factory: Any) -> None:
    app = app_factory(issuer="https://auth.example.com")
    flask = Flasks(app)
    for path in SERVED:
        thin = call(app.wsgi_app, path, base_url="https://auth.example.com")

        assert thin == call(flask.dispatch, path, base_url="https://auth.example.com")
        assert dict(thin.headers)["Strict-Transport-Security"].startswith("max-age=")
    assert flask.paths == []


@pytest.mark.parametrize("path", SERVED)
def test_head_has_the_headers_of_get_and_no_body(app: Flask, flask: Flasks, path: str) -> None:
    head = call(app.wsgi_app, path, method="HEAD")

    assert flask.paths == []
    assert head.body == b""
    assert head.headers == call(app.wsgi_app, path).headers
    assert head == call(flask.dispatch, path, method="HEAD")


@pytest.mark.parametrize(
    "request_",
    [
        {"path": "/.well-known/jwks.json?x=1"},
        {
            "path": "/.well-known/jwks.json",
            "data": b'{"a": "\\u0000"}',
            "content_type": "application/json",
        },
        {"path": "/.well-known/jwks.json/"},
        {"path": "/.well-known/x"},
        {"path": "/.well-known/jwks.json", "method": "POST"},
        {"path": "/.well-known/openid-configuration", "method": "PUT"},
    ],
)
def test_anything_else_goes_to_flask(app: Flask, flask: Flasks, request_: dict[str, Any]) -> None:
    answer = call(app.wsgi_app, **request_)

    assert flask.paths == [request_["path"].split("?")[0]]
    assert answer.status == call(flask.dispatch, **request_).status


def test_flask_still_refuses_other_methods(app: Flask) -> None:
    answer = call(app.wsgi_app, "/.well-known/jwks.json", method="POST")

    assert answer.status == "405 METHOD NOT ALLOWED"
    assert set(dict(answer.headers)["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_a_preflight_goes_to_flask(app: Flask, flask: Flasks) -> None:
    headers = {"Origin": "https://rp.example", "Access-Control-Request-Method": "GET"}

    answer = call(app.wsgi_app, "/.well-known/jwks.json", method="OPTIONS", headers=headers)

    assert flask.paths == ["/.well-known/jwks.json"]
    assert answer.status == "204 NO CONTENT"
    assert dict(answer.headers)["Access-Control-Allow-Origin"] == "*"


def test_a_new_document_is_passed_through_flask_again(app: Flask, flask: Flasks) -> None:
    path = "/.well-known/openid-configuration"
    before = call(app.wsgi_app, path)
    document: hotpath.Document = app.extensions[discovery.EXTENSION]
    app.extensions[discovery.EXTENSION] = replace(document, body=b'{"issuer":"x"}')

    after = call(app.wsgi_app, path)

    assert flask.paths == []
    assert after.body == b'{"issuer":"x"}'
    assert dict(after.headers)["Content-Length"] == "14"
    assert after == call(flask.dispatch, path)
    assert after.headers != before.headers


def test_a_failing_handler_leaves_the_answer_to_flask(
    app: Flask, flask: Flasks, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> bytes:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(current_keyring(), "jwks_json", unreachable)

    answer = call(app.wsgi_app, "/.well-known/jwks.json")

    assert flask.paths == ["/.well-known/jwks.json"]
    assert answer.status == "503 SERVICE UNAVAILABLE"
    assert "Retry-After" in dict(answer.headers)


@pytest.mark.parametrize("endpoint", ["oauth.token", "accounts.login", "oidc.userinfo"])
def test_only_unlimited_documents_open_to_every_origin_may_be_served(
    app: Flask, endpoint: str
) -> None:
    with pytest.raises(ValueError, match=endpoint):
        hotpath.serve(app, endpoint, discovery.metadata_document)
