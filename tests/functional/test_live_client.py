"""A real OAuth client library against the real server on loopback.

Authlib's requests client runs authorization code + PKCE, refresh with
rotation, revocation and introspection over HTTP; a `requests` session plays
the person's browser (sign-in form, consent). Every token is verified against
the JWKS the discovery document points to, as a relying party would.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import BaseWSGIServer, make_server

from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user

pytestmark = pytest.mark.live

SCOPE = "openid profile email offline_access"
HIDDEN_INPUT_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
TICKED_INPUT_RE = re.compile(r'<input type="checkbox" name="([^"]+)" value="([^"]*)" checked>')
FORM_ACTION_RE = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass
class LiveServer:
    """The app served over HTTP on 127.0.0.1, with the clients registered for the test."""

    url: str
    app: Flask
    rp_id: str
    rp_secret: str
    rs_id: str
    rs_secret: str
    user_sub: str


@pytest.fixture
def live_server(app_factory: Any) -> Iterator[LiveServer]:
    """Serve a fresh app in a thread; the issuer is the server's real URL."""
    served: dict[str, Flask] = {}

    def late_bound(environ: dict[str, Any], start_response: Any) -> Any:
        return served["app"](environ, start_response)

    # Bind first (port 0 picks a free port), then build the app with that port in its issuer.
    server: BaseWSGIServer = make_server("127.0.0.1", 0, late_bound)
    url = f"http://127.0.0.1:{server.server_port}"
    app = app_factory(issuer=url)
    served["app"] = app
    with app.app_context():
        from authserver.extensions import db

        user = make_user()
        rp, rp_secret = make_client(name="Live RP")
        rs, rs_secret = make_client(
            name="Resource server",
            redirect_uris=(),
            grant_types=("client_credentials",),
            scope="api:read",
            is_resource_server=True,
        )
        assert rp_secret is not None and rs_secret is not None
        live = LiveServer(url, app, rp.client_id, rp_secret, rs.client_id, rs_secret, user.sub)
        db.session.remove()
    thread = threading.Thread(target=server.serve_forever, name="live-authserver", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the live server thread did not stop"


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of a hosted page's form (CSRF token, continuation parameters)."""
    return {html.unescape(k): html.unescape(v) for k, v in HIDDEN_INPUT_RE.findall(page)}


def ticked_fields(page: str) -> list[tuple[str, str]]:
    """The ticked, enabled checkboxes of a hosted page's form (the consent page's scopes)."""
    return [(html.unescape(k), html.unescape(v)) for k, v in TICKED_INPUT_RE.findall(page)]


def form_action(base: str, page: str) -> str:
    match = FORM_ACTION_RE.search(page)
    assert match, "no form on the page"
    return urljoin(base, html.unescape(match.group(1)))


def browse_to_callback(server: LiveServer, authorization_url: str) -> str:
    """Act as the person: sign in, click Allow, and return the redirect to the client.

    Redirects are followed by hand so the one to the client's redirect_uri is
    returned instead of fetched.
    """
    browser = requests.Session()
    response = browser.get(authorization_url, allow_redirects=False, timeout=10)
    for _ in range(10):
        if response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(REDIRECT_URI):
                return location
            assert location.startswith(server.url + "/"), f"redirected off-site: {location}"
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, response.text
        fields = hidden_fields(response.text)
        if 'name="password"' in response.text:
            fields.update(email="alice@example.com", password=PASSWORD)
        else:
            assert 'value="allow"' in response.text, "neither a sign-in nor a consent page"
            fields["decision"] = "allow"
        action = form_action(response.url, response.text)
        data = [*fields.items(), *ticked_fields(response.text)]
        response = browser.post(action, data=data, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects before reaching the client")


def at_hash(access_token: str) -> str:
    """OpenID Connect Core section 3.1.3.6, for RS256: left half of SHA-256, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def verify_id_token(
    token: dict[str, Any], keys: KeySet, issuer: str, client_id: str, nonce: str | None
) -> dict[str, Any]:
    """Verify the id_token's signature with the JWKS and its claims as Core section 3.1.3.7 says."""
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"]
    expected: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
    }
    if nonce is not None:
        expected["nonce"] = {"essential": True, "value": nonce}
    jwt.JWTClaimsRegistry(**expected).validate(decoded.claims)
    assert decoded.claims["at_hash"] == at_hash(token["access_token"])
    if nonce is None:
        assert "nonce" not in decoded.claims
    return decoded.claims


def verify_access_token(
    token: dict[str, Any], keys: KeySet, issuer: str, client_id: str
) -> dict[str, Any]:
    """RFC 9068 section 4: a resource server's checks of a JWT access token."""
    decoded = jwt.decode(token["access_token"], keys, algorithms=["ES256", "RS256"])
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": issuer},  # the default audience is the issuer
        client_id={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["scope"] == SCOPE
    return decoded.claims


def refresh_fails(rp: OAuth2Session, url: str, refresh_token: str) -> str:
    """Try a refresh token; return the error code the server answered with."""
    with pytest.raises(OAuthError) as failure:
        rp.refresh_token(url, refresh_token=refresh_token)
    return str(failure.value.error)


def introspect(rs: OAuth2Session, url: str, token: str) -> dict[str, Any]:
    response = rs.introspect_token(url, token=token)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sign_in_with_authlib(
    server: LiveServer, meta: dict[str, Any], scope: str = SCOPE
) -> tuple[OAuth2Session, Any]:
    """The relying party's side of the code flow: PKCE S256, state and nonce, then the exchange."""
    rp = OAuth2Session(
        server.rp_id,
        server.rp_secret,
        scope=scope,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    assert "code_challenge_method=S256" in url
    callback = browse_to_callback(server, url)
    # Authlib checks `state` while parsing the callback (a mismatch raises).
    token = rp.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    # RFC 9207: the response names its issuer.
    assert parse_qs(urlsplit(callback).query)["iss"] == [server.url]
    return rp, (token, nonce, state)


def test_authlib_client_runs_code_flow_pkce_refresh_revoke_and_introspection(
    live_server: LiveServer,
) -> None:
    server = live_server
    meta = requests.get(server.url + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == server.url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())

    # Authorization code + PKCE, verified against the published keys.
    rp, (token, nonce, _) = sign_in_with_authlib(server, meta)
    assert token["token_type"].lower() == "bearer"
    id_claims = verify_id_token(token, keys, server.url, server.rp_id, nonce)
    access_claims = verify_access_token(token, keys, server.url, server.rp_id)
    assert id_claims["sub"] == access_claims["sub"] == server.user_sub

    # UserInfo with the bearer token the session now holds.
    userinfo = rp.get(meta["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == {
        "sub": server.user_sub,
        "name": "Alice Liddell",
        "email": "alice@example.com",
        "email_verified": True,
        "updated_at": userinfo.json()["updated_at"],
    }

    # The resource server introspects with its own credentials.
    rs = OAuth2Session(server.rs_id, server.rs_secret)
    first = introspect(rs, meta["introspection_endpoint"], token["access_token"])
    assert first["active"] is True
    assert first["sub"] == server.user_sub and first["client_id"] == server.rp_id

    # Refresh rotates: a new refresh token, new tokens that verify.
    old_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
    new_refresh = refreshed["refresh_token"]
    assert new_refresh != old_refresh
    assert refreshed["access_token"] != token["access_token"]
    verify_access_token(refreshed, keys, server.url, server.rp_id)
    refreshed_id = verify_id_token(refreshed, keys, server.url, server.rp_id, None)
    assert refreshed_id["sub"] == server.user_sub
    assert refreshed_id["auth_time"] == id_claims["auth_time"]
    # Refresh tokens are the client's own: it introspects them itself (RFC 7662 section 4).
    own = OAuth2Session(server.rp_id, server.rp_secret)
    assert introspect(own, meta["introspection_endpoint"], old_refresh) == {"active": False}
    assert introspect(own, meta["introspection_endpoint"], new_refresh)["active"] is True
    assert introspect(rs, meta["introspection_endpoint"], new_refresh) == {"active": False}

    # Presenting the rotated token again is reuse: refused, and the whole family is revoked.
    assert refresh_fails(rp, meta["token_endpoint"], old_refresh) == "invalid_grant"
    assert refresh_fails(rp, meta["token_endpoint"], new_refresh) == "invalid_grant"
    for revoked in (new_refresh, refreshed["access_token"], token["access_token"]):
        assert introspect(own, meta["introspection_endpoint"], revoked) == {"active": False}

    # A second sign-in (consent remembered), then RFC 7009 revocation by the client.
    rp2, (token2, nonce2, _) = sign_in_with_authlib(server, meta)
    verify_id_token(token2, keys, server.url, server.rp_id, nonce2)
    assert introspect(rs, meta["introspection_endpoint"], token2["access_token"])["active"]
    revoked = rp2.revoke_token(
        meta["revocation_endpoint"], token=token2["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200, revoked.text
    assert introspect(own, meta["introspection_endpoint"], token2["refresh_token"]) == {
        "active": False
    }
    # Revoking the refresh token revokes its grant, so the access token goes with it.
    assert introspect(rs, meta["introspection_endpoint"], token2["access_token"]) == {
        "active": False
    }
    assert rp2.get(meta["userinfo_endpoint"], timeout=10).status_code == 401
    assert refresh_fails(rp2, meta["token_endpoint"], token2["refresh_token"]) == "invalid_grant"


def set_claims_in_id_token(server: LiveServer, value: bool) -> None:
    """Register the live relying party's option as the console or the admin API would."""
    from authserver.clients.services import get_client, update_client
    from authserver.extensions import db
    from authserver.roles.ceiling import SYSTEM

    with server.app.app_context():
        client = get_client(server.rp_id)
        assert client is not None
        update_client(client, actor=SYSTEM, claims_in_id_token=value)
        db.session.commit()
        db.session.remove()


def test_a_client_registered_for_claims_in_the_id_token_reads_profile_and_email_there(
    live_server: LiveServer,
) -> None:
    server = live_server
    meta = requests.get(server.url + "/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())

    # By default (OIDC Core 5.4) the scope claims go to userinfo, not the id_token.
    _, (token, nonce, _) = sign_in_with_authlib(server, meta)
    plain = verify_id_token(token, keys, server.url, server.rp_id, nonce)
    assert not {"name", "email", "email_verified", "updated_at"} & set(plain)

    set_claims_in_id_token(server, True)
    rp, (token, nonce, _) = sign_in_with_authlib(server, meta)
    claims = verify_id_token(token, keys, server.url, server.rp_id, nonce)
    userinfo = rp.get(meta["userinfo_endpoint"], timeout=10).json()
    assert userinfo["email"] == "alice@example.com"
    assert {name: claims[name] for name in userinfo} == userinfo
    # A refresh's id_token carries them too.
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert verify_id_token(refreshed, keys, server.url, server.rp_id, None)["email"] == (
        "alice@example.com"
    )

    # Only the claims of the granted scopes: without `email`, no e-mail.
    _, (narrow, nonce, _) = sign_in_with_authlib(server, meta, scope="openid profile")
    decoded = jwt.decode(narrow["id_token"], keys, algorithms=["RS256"]).claims
    assert decoded["nonce"] == nonce
    assert decoded["name"] == "Alice Liddell"
    assert "email" not in decoded and "email_verified" not in decoded


def test_two_tabs_refreshing_with_one_token_both_stay_signed_in_within_the_grace_period(
    live_server: LiveServer,
) -> None:
    """Two Authlib sessions (two tabs) hold the same refresh token and both refresh it.

    With the client's grace period both get tokens that verify and keep rotating; the
    token they shared, presented after the window, still revokes the family.
    """
    server = live_server
    with server.app.app_context():
        from datetime import timedelta

        from sqlalchemy import select

        from authserver.clients.services import get_client, update_client
        from authserver.core.secrets import hash_secret
        from authserver.extensions import db
        from authserver.oauth.models import RefreshToken
        from authserver.roles.ceiling import SYSTEM

        rp_row = get_client(server.rp_id)
        assert rp_row is not None and rp_row.refresh_token_grace_period_seconds == 0
        update_client(rp_row, actor=SYSTEM, refresh_token_grace_period_seconds=30)
        db.session.commit()
        db.session.remove()
    meta = requests.get(server.url + "/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    tab_one, (token, _, _) = sign_in_with_authlib(server, meta)
    tab_two = OAuth2Session(
        server.rp_id,
        server.rp_secret,
        token=dict(token),
        token_endpoint_auth_method="client_secret_basic",
    )
    shared = token["refresh_token"]

    first = tab_one.refresh_token(meta["token_endpoint"], refresh_token=shared)
    second = tab_two.refresh_token(meta["token_endpoint"], refresh_token=shared)

    assert first["refresh_token"] != second["refresh_token"]
    for tab, refreshed in ((tab_one, first), (tab_two, second)):
        verify_access_token(refreshed, keys, server.url, server.rp_id)
        assert verify_id_token(refreshed, keys, server.url, server.rp_id, None)["sub"] == (
            server.user_sub
        )
        assert tab.get(meta["userinfo_endpoint"], timeout=10).status_code == 200
    # Each tab rotates its own token on.
    latest = [
        tab.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])
        for tab, refreshed in ((tab_one, first), (tab_two, second))
    ]

    own = OAuth2Session(server.rp_id, server.rp_secret)
    rs = OAuth2Session(server.rs_id, server.rs_secret)
    asker = {"refresh_token": own, "access_token": rs}
    for refreshed in latest:
        for kind, session in asker.items():
            assert introspect(session, meta["introspection_endpoint"], refreshed[kind])["active"]

    # After the window the shared token is reuse again: the family is revoked.
    with server.app.app_context():
        row = db.session.scalars(
            select(RefreshToken).where(RefreshToken.token_hash == hash_secret(shared))
        ).one()
        assert row.used_at is not None
        row.used_at = row.used_at - timedelta(seconds=31)
        db.session.commit()
        db.session.remove()
    assert refresh_fails(tab_one, meta["token_endpoint"], shared) == "invalid_grant"
    for refreshed in latest:
        for kind, session in asker.items():
            assert introspect(session, meta["introspection_endpoint"], refreshed[kind]) == {
                "active": False
            }
