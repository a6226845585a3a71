"""Back- and front-channel logout client metadata on every surface: RFC 7591 registration,
the admin API, the admin console and the CLI, all checked by the same rules.

OpenID Connect Back-Channel Logout 1.0 section 2.2 and Front-Channel Logout 1.0 section 2.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.clients.metadata import ClientError, check_logout_uri
from authserver.clients.models import Client
from authserver.extensions import db
from tests.factories import REDIRECT_URI, make_client, make_initial_access_token, make_user
from tests.functional.test_admin_api import AdminTool, call, person_token
from tests.oauth_helpers import csrf_token, sign_in

BACKCHANNEL = "https://rp.example.com/backchannel-logout?tenant=1"


@pytest.mark.parametrize(
    "uri",
    [
        "https://rp.example.com/logout",
        "https://rp.example.com:8443/a/b?c=d",
        "http://127.0.0.1:9000/logout",
        "http://localhost/logout",
        "http://[::1]:8080/logout",
    ],
)
def test_https_and_loopback_http_logout_uris_are_accepted(uri: str) -> None:
    assert check_logout_uri(uri, "backchannel_logout_uri") == uri


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("https://rp.example.com/logout#frag", "fragment"),
        ("http://rp.example.com/logout", "must use https"),
        ("com.example.app:/logout", "https URL"),
        ("/logout", "absolute"),
        ("https://user:pw@rp.example.com/logout", "user information"),
        ("https://rp.example.com:99999/logout", "invalid port"),
    ],
)
def test_other_logout_uris_are_refused(uri: str, why: str) -> None:
    with pytest.raises(ClientError, match=why):
        check_logout_uri(uri, "backchannel_logout_uri")


def test_dynamic_registration_takes_and_returns_the_back_channel_metadata(
    app_factory: Any,
) -> None:
    app = app_factory(dynamic_registration=True)
    with app.app_context():
        browser = app.test_client()
        token = make_initial_access_token(note="test")
        metadata = {
            "redirect_uris": [REDIRECT_URI],
            "backchannel_logout_uri": BACKCHANNEL,
            "backchannel_logout_session_required": True,
        }
        response = browser.post(
            "/oauth2/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
        )

        assert response.status_code == 201, response.text
        body = response.get_json()
        assert body["backchannel_logout_uri"] == BACKCHANNEL
        assert body["backchannel_logout_session_required"] is True

        refused = browser.post(
            "/oauth2/register",
            json={**metadata, "backchannel_logout_uri": "http://rp.example.com/bcl"},
            headers={"Authorization": f"Bearer {make_initial_access_token(note='t')}"},
        )
        assert refused.status_code == 400
        assert refused.get_json()["error"] == "invalid_client_metadata"
        wrong_type = browser.post(
            "/oauth2/register",
            json={**metadata, "backchannel_logout_session_required": "yes"},
            headers={"Authorization": f"Bearer {make_initial_access_token(note='t')}"},
        )
        assert wrong_type.status_code == 400


def test_a_front_channel_uri_must_share_the_origin_of_a_redirect_uri(app: Flask) -> None:
    rp, _ = make_client(frontchannel_logout_uri="https://rp.example.com/fcl?x=1")
    assert rp.frontchannel_logout_uri == "https://rp.example.com/fcl?x=1"

    with pytest.raises(ClientError, match="registered redirect URI"):
        make_client(frontchannel_logout_uri="https://rp.example.com:8443/fcl")
    with pytest.raises(ClientError, match="registered redirect URI"):
        make_client(frontchannel_logout_uri="https://other.example.com/fcl")


def test_the_admin_api_sets_changes_and_removes_the_back_channel_uri(
    app: Flask, client: Any
) -> None:
    tool_client, secret = make_client(
        name="Admin tool", scope="openid offline_access admin", roles=["admin"]
    )
    assert secret is not None
    admin = person_token(app, AdminTool(tool_client.client_id, secret), "root@example.com")[
        "access_token"
    ]
    created = call(
        client,
        "POST",
        "/clients",
        admin,
        {
            "client_name": "RP",
            "redirect_uris": [REDIRECT_URI],
            "backchannel_logout_uri": BACKCHANNEL,
        },
    )
    assert created.status_code == 201, created.text
    body = created.get_json()
    assert body["backchannel_logout_uri"] == BACKCHANNEL
    assert body["backchannel_logout_session_required"] is False
    path = f"/clients/{body['client_id']}"

    changed = call(client, "PATCH", path, admin, {"backchannel_logout_session_required": True})
    assert changed.get_json()["backchannel_logout_session_required"] is True
    assert changed.get_json()["backchannel_logout_uri"] == BACKCHANNEL
    refused = call(client, "PATCH", path, admin, {"backchannel_logout_uri": "https://x/#f"})
    assert refused.status_code == 422
    assert "fragment" in refused.get_json()["error_description"]
    removed = call(client, "PATCH", path, admin, {"backchannel_logout_uri": None})
    assert "backchannel_logout_uri" not in removed.get_json()


def test_the_console_sets_the_back_channel_uri(app: Flask) -> None:
    make_user("root@example.com", roles=["admin"])
    rp, _ = make_client()
    browser = app.test_client()
    sign_in(browser, "root@example.com")
    page = browser.get(f"/admin/clients/{rp.client_id}")
    assert 'name="backchannel_logout_uri"' in page.text

    response = browser.post(
        f"/admin/clients/{rp.client_id}",
        data={
            "csrf_token": csrf_token(page.text),
            "name": rp.name,
            "redirect_uris": REDIRECT_URI,
            "grant_types": list(rp.grant_types),
            "scope": rp.scope,
            "backchannel_logout_uri": BACKCHANNEL,
            "backchannel_logout_session_required": "y",
        },
    )

    assert response.status_code == 302, response.text
    db.session.expire_all()
    saved = db.session.scalar(select(Client).where(Client.client_id == rp.client_id))
    assert saved is not None
    assert saved.backchannel_logout_uri == BACKCHANNEL
    assert saved.backchannel_logout_session_required is True
    shown = browser.get(f"/admin/clients/{rp.client_id}").text
    assert f'value="{BACKCHANNEL}"' in shown


def test_the_cli_registers_and_changes_the_back_channel_uri(app: Flask) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(
        args=[
            "clients",
            "create",
            "--name",
            "CLI RP",
            "--redirect-uri",
            REDIRECT_URI,
            "--grant-type",
            "authorization_code",
            "--scope",
            "openid",
            "--auth-method",
            "client_secret_basic",
            "--json",
            "--backchannel-logout-uri",
            BACKCHANNEL,
            "--backchannel-logout-session-required",
        ]
    )
    assert created.exit_code == 0, created.output
    body = json.loads(created.output[created.output.index("{") :])
    assert body["backchannel_logout_uri"] == BACKCHANNEL
    assert body["backchannel_logout_session_required"] is True

    refused = runner.invoke(
        args=[
            "clients",
            "update",
            body["client_id"],
            "--backchannel-logout-uri",
            "http://x.example/",
        ]
    )
    assert refused.exit_code != 0 and "https" in refused.output
    removed = runner.invoke(
        args=["clients", "update", body["client_id"], "--backchannel-logout-uri", ""]
    )
    assert removed.exit_code == 0, removed.output
    shown = runner.invoke(args=["clients", "show", body["client_id"], "--json"])
    assert "backchannel_logout_uri" not in json.loads(shown.output)
