"""Pairwise subject identifiers (OpenID Connect Core section 8) on every path a `sub` takes.

A pairwise client receives its own `sub` for a person: in the id_token, at userinfo, in
its access tokens, from introspection, after a refresh and from the device flow; the same
for every client of its sector and a different one for other sectors. What it sends back
(an `id_token_hint`, a bearer token at userinfo or the admin API) is understood.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from werkzeug.serving import BaseWSGIServer, make_server

from authserver.accounts.models import User
from authserver.clients.cache import load_client
from authserver.clients.models import Client
from authserver.extensions import db, utcnow
from authserver.oidc.id_token import create_id_token
from authserver.oidc.subjects import subject_for
from tests.factories import REDIRECT_URI, make_client, make_initial_access_token, make_user
from tests.fetch_servers import Certificate, certificate, json_document, serve
from tests.functional.test_admin_console import ADMIN, _call, _signed_in
from tests.functional.test_device_flow import DEVICE_GRANT, approve, poll, start
from tests.functional.test_live_client import browse_to_callback
from tests.oauth_helpers import (
    authorize_params,
    basic,
    csrf_token,
    exchange,
    get_code,
    pkce_pair,
    query,
    sign_in,
)

SCOPE = "openid profile email offline_access"
SIGNED_OUT_URI = "https://rp.example.com/signed-out"


def claims_of(token: str) -> dict[str, Any]:
    """The payload of a JWT we issued (its signature is checked elsewhere)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def sector_uri(tls: Certificate) -> Iterator[str]:
    """A sector_identifier_uri on loopback HTTPS listing the test redirect URI."""
    with serve(json_document(json.dumps([REDIRECT_URI]).encode()), tls=tls) as url:
        yield url + "/sector.json"


# --- a real client library against the real server ------------------------------------


@dataclass
class Registered:
    client_id: str
    secret: str


@dataclass
class Live:
    url: str
    alice_sub: str
    shop: Registered  # pairwise, its sector the redirect host rp.example.com
    partner: Registered  # pairwise, sector 127.0.0.1 through the sector_identifier_uri
    partner_too: Registered  # pairwise, the same sector_identifier_uri
    public: Registered
    resource_server: Registered


@pytest.fixture
def live(app_factory: Any, tls: Certificate, sector_uri: str) -> Iterator[Live]:
    served: dict[str, Flask] = {}
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, lambda env, start: served["app"](env, start)
    )
    url = f"http://127.0.0.1:{server.server_port}"
    app = app_factory(issuer=url, fetch_allow_private_addresses=True, fetch_ca_file=tls.cert_file)
    served["app"] = app
    with app.app_context():
        alice = make_user()

        def register(name: str, **extra: Any) -> Registered:
            client, secret = make_client(name=name, scope=SCOPE, **extra)
            assert secret is not None
            return Registered(client.client_id, secret)

        live = Live(
            url=url,
            alice_sub=alice.sub,
            shop=register("Shop", subject_type="pairwise"),
            partner=register("Partner", subject_type="pairwise", sector_identifier_uri=sector_uri),
            partner_too=register(
                "Partner too", subject_type="pairwise", sector_identifier_uri=sector_uri
            ),
            public=register("Public RP", subject_type="public"),
            resource_server=register(
                "API",
                redirect_uris=(),
                grant_types=("client_credentials",),
                is_resource_server=True,
            ),
        )
    thread = threading.Thread(target=server.serve_forever, name="pairwise-live", daemon=True)
    thread.start()
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def subjects_seen_by(live: Live, rp: Registered, meta: dict[str, Any], keys: KeySet) -> str:
    """Run the code flow with Authlib as `rp`; the one `sub` every answer gives it."""
    session = OAuth2Session(
        rp.client_id,
        rp.secret,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, _ = session.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce="n-1"
    )
    callback = browse_to_callback(live, url)  # type: ignore[arg-type]
    token = session.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    access = jwt.decode(token["access_token"], keys, algorithms=["ES256", "RS256"]).claims
    userinfo = session.get(meta["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200, userinfo.text
    api = OAuth2Session(live.resource_server.client_id, live.resource_server.secret)
    by_api = api.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    by_itself = session.introspect_token(
        meta["introspection_endpoint"], token=token["refresh_token"]
    )
    refreshed = session.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    again = jwt.decode(refreshed["id_token"], keys, algorithms=["RS256"]).claims
    subs = {
        "id_token": id_token["sub"],
        "access_token": access["sub"],
        "userinfo": userinfo.json()["sub"],
        "introspection (resource server)": by_api.json()["sub"],
        "introspection (refresh token)": by_itself.json()["sub"],
        "id_token after refresh": again["sub"],
    }
    assert len(set(subs.values())) == 1, subs
    return str(id_token["sub"])


def test_every_answer_gives_a_pairwise_client_its_own_sub(live: Live) -> None:
    meta = requests.get(live.url + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["subject_types_supported"] == ["public", "pairwise"]
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())

    shop = subjects_seen_by(live, live.shop, meta, keys)
    partner = subjects_seen_by(live, live.partner, meta, keys)
    partner_too = subjects_seen_by(live, live.partner_too, meta, keys)
    public = subjects_seen_by(live, live.public, meta, keys)

    assert public == live.alice_sub
    assert shop != live.alice_sub and partner != live.alice_sub
    # Different sectors, different subs; one sector (one sector_identifier_uri), one sub.
    assert shop != partner
    assert partner == partner_too


# --- what clients send back -----------------------------------------------------------


def pairwise_client(**extra: Any) -> str:
    extra.setdefault("post_logout_redirect_uris", [SIGNED_OUT_URI])
    client, _ = make_client(subject_type="pairwise", **extra)
    return client.client_id


def id_token_for(user: User, client_id: str) -> str:
    client = load_client(client_id)
    assert client is not None
    return create_id_token(client=client, user=user, scope="openid", auth_time=utcnow())


def test_an_id_token_hint_with_a_pairwise_sub_is_honoured_at_authorize(
    client: FlaskClient,
) -> None:
    alice = make_user()
    bob = make_user(email="bob@example.com", name="Bob")
    client_id = pairwise_client()
    sign_in(client)
    hint = id_token_for(alice, client_id)
    assert claims_of(hint)["sub"] != alice.sub

    _, challenge = pkce_pair()
    get_code(client, client_id, challenge)  # consent given once
    params = authorize_params(client_id, challenge, prompt="none", id_token_hint=hint)
    got = query(client.get("/authorize", query_string=params))
    assert "code" in got, got
    # Bob's pairwise hint names someone else than the signed-in Alice.
    params["id_token_hint"] = id_token_for(bob, client_id)
    got = query(client.get("/authorize", query_string=params))
    assert got["error"] == "login_required"


def test_an_id_token_hint_with_a_pairwise_sub_signs_out_at_once(client: FlaskClient) -> None:
    alice = make_user()
    client_id = pairwise_client()
    sign_in(client)
    response = client.get(
        "/logout",
        query_string={
            "id_token_hint": id_token_for(alice, client_id),
            "post_logout_redirect_uri": SIGNED_OUT_URI,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == SIGNED_OUT_URI


def test_a_pairwise_hint_about_someone_else_asks_before_signing_out(client: FlaskClient) -> None:
    make_user()
    bob = make_user(email="bob@example.com", name="Bob")
    client_id = pairwise_client()
    sign_in(client)  # as Alice
    page = client.get(
        "/logout",
        query_string={"id_token_hint": id_token_for(bob, client_id)},
    )
    assert page.status_code == 200
    assert "alice@example.com" in page.text and csrf_token(page.text)


def test_the_admin_api_accepts_a_pairwise_persons_token(app: Flask, client: FlaskClient) -> None:
    root = make_user(email="root@example.com", roles=["admin"])
    tool, secret = make_client(
        name="Admin tool", scope="openid admin", roles=["admin"], subject_type="pairwise"
    )
    assert secret is not None
    sign_in(client, "root@example.com")
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, tool.client_id, challenge, scope="openid admin")
    token = exchange(client, tool.client_id, secret, code, verifier).get_json()
    pairwise_sub = claims_of(token["access_token"])["sub"]
    assert pairwise_sub == claims_of(token["id_token"])["sub"] != root.sub

    response = client.get(
        "/admin/api/v1/users", headers={"Authorization": f"Bearer {token['access_token']}"}
    )
    assert response.status_code == 200, response.text
    # The admin API speaks of people by their public sub, never the client's pairwise one.
    listed = {item["sub"] for item in response.get_json()["items"]}
    assert root.sub in listed and pairwise_sub not in listed


def test_the_device_flow_gives_the_pairwise_sub(
    app_factory: Any, tls: Certificate, sector_uri: str
) -> None:
    app = app_factory(fetch_allow_private_addresses=True, fetch_ca_file=tls.cert_file)
    with app.app_context():
        alice = make_user()
        tv, secret = make_client(
            name="TV",
            redirect_uris=(),
            grant_types=(DEVICE_GRANT,),
            subject_type="pairwise",
            sector_identifier_uri=sector_uri,
        )
        device, browser = app.test_client(), app.test_client()
        body = start(device, tv, secret, scope="openid profile").get_json()
        sign_in(browser)
        approve(browser, body["user_code"])
        token = poll(device, tv, secret, body["device_code"]).get_json()
        expected = subject_for(alice, load_client(tv.client_id))
        assert expected != alice.sub
        assert claims_of(token["id_token"])["sub"] == expected
        assert claims_of(token["access_token"])["sub"] == expected
        userinfo = device.get(
            "/userinfo", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        assert userinfo.get_json()["sub"] == expected


# --- registration -----------------------------------------------------------------------


def test_dynamic_registration_takes_subject_type_and_sector_identifier_uri(
    app_factory: Any, tls: Certificate, sector_uri: str
) -> None:
    app = app_factory(
        dynamic_registration=True,
        fetch_allow_private_addresses=True,
        fetch_ca_file=tls.cert_file,
    )
    with app.app_context():
        client = app.test_client()
        metadata = {
            "client_name": "Shop (mobile)",
            "redirect_uris": [REDIRECT_URI],
            "subject_type": "pairwise",
            "sector_identifier_uri": sector_uri,
        }
        answer = client.post(
            "/oauth2/register",
            json=metadata,
            headers={"Authorization": f"Bearer {make_initial_access_token()}"},
        )
        assert answer.status_code == 201, answer.text
        body = answer.get_json()
        assert body["subject_type"] == "pairwise"
        assert body["sector_identifier_uri"] == sector_uri

        # Section 8.1: redirect URIs on two hosts and no sector_identifier_uri are refused.
        refused = client.post(
            "/oauth2/register",
            json={
                "redirect_uris": [REDIRECT_URI, "https://other.example.com/cb"],
                "subject_type": "pairwise",
            },
            headers={"Authorization": f"Bearer {make_initial_access_token()}"},
        )
        assert refused.status_code == 400
        assert refused.get_json()["error"] == "invalid_client_metadata"
        assert "sector_identifier_uri" in refused.get_json()["error_description"]

        # RFC 7592: a replacement without subject_type keeps the pairwise type.
        replaced = client.put(
            f"/oauth2/register/{body['client_id']}",
            json={
                "client_id": body["client_id"],
                "redirect_uris": [REDIRECT_URI],
                "sector_identifier_uri": sector_uri,
            },
            headers={"Authorization": f"Bearer {body['registration_access_token']}"},
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.get_json()["subject_type"] == "pairwise"


def test_a_sector_uri_that_cannot_be_fetched_refuses_registration(
    app_factory: Any, sector_uri: str
) -> None:
    """With AUTHSERVER_FETCH_ALLOW_PRIVATE_ADDRESSES=false a loopback sector URI is refused."""
    app = app_factory(dynamic_registration=True, fetch_allow_private_addresses=False)
    with app.app_context():
        answer = app.test_client().post(
            "/oauth2/register",
            json={
                "redirect_uris": [REDIRECT_URI],
                "subject_type": "pairwise",
                "sector_identifier_uri": sector_uri,
            },
            headers={"Authorization": f"Bearer {make_initial_access_token()}"},
        )
        assert answer.status_code == 400
        assert answer.get_json()["error"] == "invalid_client_metadata"
        assert "non-public address" in answer.get_json()["error_description"]


def test_the_admin_api_registers_and_changes_the_subject_type(
    app: Flask, client: FlaskClient
) -> None:
    make_client(name="Admin tool", scope="openid admin", roles=["admin"])
    service, secret = make_client(
        name="Provisioner",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="admin",
        roles=["admin"],
    )
    assert secret is not None
    token = client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(service.client_id, secret),
    ).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/admin/api/v1/clients",
        json={
            "client_name": "Shop",
            "redirect_uris": [REDIRECT_URI],
            "subject_type": "pairwise",
        },
        headers=auth,
    )
    assert created.status_code == 201, created.text
    assert created.get_json()["subject_type"] == "pairwise"
    client_id = created.get_json()["client_id"]
    changed = client.patch(
        f"/admin/api/v1/clients/{client_id}", json={"subject_type": "public"}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.get_json()["subject_type"] == "public"
    refused = client.patch(
        f"/admin/api/v1/clients/{client_id}",
        json={"subject_type": "pairwise", "redirect_uris": [REDIRECT_URI, "https://b.example/cb"]},
        headers=auth,
    )
    assert refused.status_code == 422
    assert "sector_identifier_uri" in refused.get_json()["error_description"]


def test_the_admin_console_sets_the_subject_type(app: Flask) -> None:
    make_user(ADMIN, roles=["admin"])
    browser = _signed_in(app, ADMIN)
    form = {
        "name": "Shop",
        "redirect_uris": "https://shop.example.com/cb",
        "grant_types": ["authorization_code"],
        "scope": "openid",
        "token_endpoint_auth_method": "client_secret_basic",
        "subject_type": "pairwise",
        "sector_identifier_uri": "",
    }
    created = _call(browser, "POST", "/admin/clients/new", form)
    assert created.status_code == 200, created.text
    shop = db.session.scalar(select(Client).where(Client.name == "Shop"))
    assert shop is not None and shop.subject_type == "pairwise"
    page = browser.get(f"/admin/clients/{shop.client_id}").text
    assert '<option value="pairwise" selected>' in page

    # Two redirect hosts need a sector_identifier_uri; the page says so, nothing changes.
    two_hosts = {**form, "redirect_uris": "https://shop.example.com/cb\nhttps://b.example/cb"}
    refused = _call(browser, "POST", f"/admin/clients/{shop.client_id}", two_hosts)
    assert refused.status_code == 422 and "needs a sector_identifier_uri" in refused.text
    saved = _call(browser, "POST", f"/admin/clients/{shop.client_id}", {**form, "subject_type": ""})
    assert saved.status_code == 302
    db.session.refresh(shop)
    assert shop.subject_type == "pairwise"  # "" keeps the client's type


def test_the_discovery_document_offers_pairwise_only_with_a_key(app_factory: Any) -> None:
    from dataclasses import replace

    from authserver.oidc.discovery import metadata

    config = app_factory().config["AUTHSERVER"]
    assert metadata(config)["subject_types_supported"] == ["public", "pairwise"]
    assert metadata(replace(config, pairwise_secret=""))["subject_types_supported"] == ["public"]
