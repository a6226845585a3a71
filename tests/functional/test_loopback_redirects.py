"""Native apps on a loopback port they pick at start-up (RFC 8252 sections 7.3 and 8.3).

The app is a real HTTP server on a free port of 127.0.0.1 or [::1]; the client is
registered with another port, or none. Authlib's OAuth2Session is the app's OAuth
library, a `requests` session the person's browser; the browser really reaches the app.
A redirect_uri that differs in anything but a loopback port gets the error page, never
a redirect.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tests.factories import PASSWORD, make_client
from tests.functional.test_live_client import (
    LiveServer,
    form_action,
    hidden_fields,
    live_server,
    ticked_fields,
)

pytestmark = pytest.mark.live
__all__ = ["live_server"]  # the fixture, imported for these tests


@dataclass
class NativeApp:
    """The app's loopback listener: records the query of every request it receives."""

    host: str
    server: BaseWSGIServer | None = None
    received: list[dict[str, str]] = field(default_factory=list)

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_port}"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.received.append(dict(parse_qsl(request.query_string.decode())))
        return Response("You can close this window.")(environ, start_response)


@pytest.fixture(params=["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def native_app(request: pytest.FixtureRequest) -> Iterator[NativeApp]:
    """Listen on a free port of the loopback interface, as a CLI or desktop app does."""
    host = request.param
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 loopback here")
    app = NativeApp(f"[{host}]" if ":" in host else host)
    app.server = make_server(host, 0, app)
    thread = threading.Thread(target=app.server.serve_forever, name="native-app", daemon=True)
    thread.start()
    yield app
    app.server.shutdown()
    app.server.server_close()
    thread.join(timeout=10)


def register_native_client(server: LiveServer, *redirect_uris: str, **extra: Any) -> str:
    """A public client (RFC 8252 section 8.4: no secret in an app) that skips consent."""
    with server.app.app_context():
        from authserver.extensions import db

        client, _ = make_client(
            name="Desktop app", redirect_uris=redirect_uris, auth_method="none", **extra
        )
        client_id = client.client_id
        db.session.remove()
    return client_id


def person_signs_in(server: LiveServer, url: str, app: NativeApp) -> str:
    """The browser: sign in, allow, and follow the redirect to the app's loopback port."""
    browser = requests.Session()
    browser.trust_env = False
    response = browser.get(url, allow_redirects=False, timeout=10)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(app.origin + "/"):
                reached = browser.get(location, timeout=10)
                assert reached.status_code == 200 and app.received, reached.text
                return location
            assert location.startswith(server.url + "/"), f"redirected off-site: {location}"
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, response.text
        fields = hidden_fields(response.text)
        if 'name="password"' in response.text:
            fields.update(email="alice@example.com", password=PASSWORD)
        else:
            fields["decision"] = "allow"
        data = [*fields.items(), *ticked_fields(response.text)]
        response = browser.post(
            form_action(response.url, response.text), data=data, allow_redirects=False, timeout=10
        )
    raise AssertionError("too many redirects before reaching the app")


def app_session(client_id: str, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id,
        scope="openid profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )


@pytest.mark.parametrize("registered_port", ["", ":1"], ids=["no-port", "another-port"])
def test_a_native_app_signs_in_on_the_port_it_picked(
    live_server: LiveServer, native_app: NativeApp, registered_port: str
) -> None:
    server = live_server
    client_id = register_native_client(
        server, f"http://{native_app.host}{registered_port}/callback"
    )
    redirect_uri = native_app.origin + "/callback"
    assert urlsplit(redirect_uri).port != (int(registered_port[1:]) if registered_port else None)
    app = app_session(client_id, redirect_uri)
    verifier = secrets.token_urlsafe(48)
    url, state = app.create_authorization_url(server.url + "/authorize", code_verifier=verifier)

    callback = person_signs_in(server, url, native_app)

    assert native_app.received[-1]["state"] == state
    assert native_app.received[-1]["iss"] == server.url
    token = app.fetch_token(
        server.url + "/oauth2/token", authorization_response=callback, code_verifier=verifier
    )
    assert token["access_token"] and token["id_token"]


def test_the_token_request_must_name_the_port_the_code_was_sent_to(
    live_server: LiveServer, native_app: NativeApp
) -> None:
    """RFC 6749 section 4.1.3: identical to the authorization request's, port included."""
    server = live_server
    client_id = register_native_client(server, f"http://{native_app.host}/callback")
    app = app_session(client_id, native_app.origin + "/callback")
    verifier = secrets.token_urlsafe(48)
    url, _ = app.create_authorization_url(server.url + "/authorize", code_verifier=verifier)
    callback = person_signs_in(server, url, native_app)

    other_port = app_session(client_id, f"http://{native_app.host}:1/callback")
    with pytest.raises(OAuthError) as refused:
        other_port.fetch_token(
            server.url + "/oauth2/token", authorization_response=callback, code_verifier=verifier
        )
    assert refused.value.error == "invalid_grant"


@pytest.mark.parametrize(
    "requested",
    [
        "https://127.0.0.1:{port}/callback",  # the port varies for http loopback only
        "http://127.0.0.2:{port}/callback",  # another host
        "http://localhost:{port}/callback",  # localhost is not 127.0.0.1
        "http://[::1]:{port}/callback",  # nor is [::1]
        "http://127.0.0.1:{port}/callback/other",  # another path
        "http://127.0.0.1:{port}/callback?next=/",  # another query
        "http://user@127.0.0.1:{port}/callback",  # user information
        "http://127.0.0.1:{port}/callback#fragment",  # a fragment
    ],
)
def test_anything_but_the_loopback_port_must_match_and_errors_stay_here(
    live_server: LiveServer, requested: str
) -> None:
    server = live_server
    client_id = register_native_client(server, "http://127.0.0.1/callback")
    app = app_session(client_id, requested.format(port=50123))
    url, _ = app.create_authorization_url(
        server.url + "/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "text/html" in response.headers["Content-Type"]


def test_an_https_redirect_uri_keeps_its_port(live_server: LiveServer) -> None:
    server = live_server
    client_id = register_native_client(server, "https://app.example.com:8443/callback")
    app = app_session(client_id, "https://app.example.com:9443/callback")
    url, _ = app.create_authorization_url(
        server.url + "/authorize", code_verifier=secrets.token_urlsafe(48)
    )
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 400 and "Location" not in response.headers


def test_logout_returns_to_the_loopback_port_the_app_listens_on(
    live_server: LiveServer, native_app: NativeApp
) -> None:
    """RP-initiated logout's post_logout_redirect_uri follows the same rule."""
    server = live_server
    client_id = register_native_client(
        server,
        f"http://{native_app.host}/callback",
        post_logout_redirect_uris=[f"http://{native_app.host}/signed-out"],
    )
    app = app_session(client_id, native_app.origin + "/callback")
    verifier = secrets.token_urlsafe(48)
    url, _ = app.create_authorization_url(server.url + "/authorize", code_verifier=verifier)
    callback = person_signs_in(server, url, native_app)
    token = app.fetch_token(
        server.url + "/oauth2/token", authorization_response=callback, code_verifier=verifier
    )

    response = requests.get(
        server.url + "/logout",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": native_app.origin + "/signed-out",
            "state": "bye",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code in (302, 303), response.text
    assert response.headers["Location"] == native_app.origin + "/signed-out?state=bye"

    elsewhere = requests.get(
        server.url + "/logout",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": native_app.origin + "/elsewhere",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert elsewhere.status_code == 400 and "Location" not in elsewhere.headers
