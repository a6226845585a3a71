"""`authserver clients create|list`: one JSON object with --json, refusals exit non-zero."""

from __future__ import annotations

import json

from flask import Flask
from flask.testing import FlaskCliRunner

from authserver.clients.models import Client
from authserver.clients.services import get_client
from authserver.core.secrets import hash_secret
from authserver.extensions import db

WEB_CLIENT = [
    "clients", "create", "--name", "Example RP",
    "--redirect-uri", "https://rp.example.com/callback",
    "--redirect-uri", "http://127.0.0.1:8080/callback",
    "--post-logout-redirect-uri", "https://rp.example.com/",
    "--grant-type", "authorization_code", "--grant-type", "refresh_token",
    "--scope", "openid profile email offline_access",
    "--auth-method", "client_secret_basic",
]  # fmt: skip


def invoke(app: Flask, *args: str) -> tuple[int, str, str]:
    runner: FlaskCliRunner = app.test_cli_runner()
    result = runner.invoke(args=list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_output_is_exactly_one_object_with_the_secret(app: Flask) -> None:
    code, stdout, _ = invoke(app, *WEB_CLIENT, "--json")

    assert code == 0
    registered = json.loads(stdout)  # fails on anything but exactly one JSON value
    assert isinstance(registered, dict)
    assert registered["client_name"] == "Example RP"
    assert registered["redirect_uris"] == [
        "https://rp.example.com/callback",
        "http://127.0.0.1:8080/callback",
    ]
    assert registered["post_logout_redirect_uris"] == ["https://rp.example.com/"]
    assert registered["grant_types"] == ["authorization_code", "refresh_token"]
    assert registered["response_types"] == ["code"]
    assert registered["scope"] == "openid profile email offline_access"
    assert registered["token_endpoint_auth_method"] == "client_secret_basic"
    client = get_client(registered["client_id"])
    assert client is not None
    assert client.client_secret_hash == hash_secret(registered["client_secret"])


def test_a_public_client_has_no_secret_in_the_output(app: Flask) -> None:
    code, stdout, _ = invoke(
        app,
        "clients", "create", "--name", "Native app",
        "--redirect-uri", "com.example.app:/callback",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token",
        "--scope", "openid offline_access", "--auth-method", "none", "--json",
    )  # fmt: skip

    assert code == 0
    registered = json.loads(stdout)
    assert registered["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in registered


def test_a_service_client_needs_no_redirect_uri(app: Flask) -> None:
    code, stdout, _ = invoke(
        app,
        "clients", "create", "--name", "Billing service",
        "--grant-type", "client_credentials", "--scope", "api:read api:write",
        "--auth-method", "client_secret_post", "--resource", "https://api.example.com",
        "--json",
    )  # fmt: skip

    assert code == 0
    registered = json.loads(stdout)
    assert registered["redirect_uris"] == []
    assert registered["scope"] == "api:read api:write"
    assert registered["resources"] == ["https://api.example.com"]
    assert registered["client_secret"]


def test_optional_flags_are_stored(app: Flask) -> None:
    code, stdout, _ = invoke(
        app, *WEB_CLIENT, "--web-origin", "https://rp.example.com", "--skip-consent",
        "--id-token-alg", "ES256", "--json",
    )  # fmt: skip

    assert code == 0
    client = get_client(json.loads(stdout)["client_id"])
    assert client is not None
    assert client.web_origins == ["https://rp.example.com"]
    assert client.skip_consent is True
    assert client.id_token_signed_response_alg == "ES256"


def test_the_readable_summary_warns_the_secret_is_shown_once(app: Flask) -> None:
    code, stdout, _ = invoke(app, *WEB_CLIENT)

    assert code == 0
    assert "client_secret" in stdout
    assert "only this once" in stdout


def test_an_unsafe_redirect_uri_is_refused(app: Flask) -> None:
    args = [*WEB_CLIENT, "--redirect-uri", "http://rp.example.com/callback", "--json"]

    code, stdout, stderr = invoke(app, *args)

    assert code != 0
    assert stdout == ""
    assert "http://rp.example.com/callback" in stderr
    assert db.session.query(Client).count() == 0


def test_a_public_client_with_client_credentials_is_refused(app: Flask) -> None:
    code, stdout, stderr = invoke(
        app,
        "clients", "create", "--name", "Bad", "--grant-type", "client_credentials",
        "--scope", "api:read", "--auth-method", "none", "--json",
    )  # fmt: skip

    assert code != 0
    assert stdout == ""
    assert "client_credentials" in stderr
    assert db.session.query(Client).count() == 0


def test_an_unknown_grant_type_is_refused(app: Flask) -> None:
    code, stdout, stderr = invoke(
        app,
        "clients", "create", "--name", "Bad", "--redirect-uri", "https://rp.example.com/cb",
        "--grant-type", "implicit", "--scope", "openid", "--auth-method", "none", "--json",
    )  # fmt: skip

    assert code != 0
    assert stdout == ""
    assert "implicit" in stderr
    assert db.session.query(Client).count() == 0


def test_the_grant_type_is_required(app: Flask) -> None:
    code, _, stderr = invoke(
        app, "clients", "create", "--name", "Bad", "--scope", "x", "--auth-method", "none"
    )

    assert code != 0
    assert "--grant-type" in stderr


def test_list_shows_every_client_and_never_a_secret(app: Flask) -> None:
    _, created, _ = invoke(app, *WEB_CLIENT, "--json")
    registered = json.loads(created)

    code, table, _ = invoke(app, "clients", "list")
    _, listed, _ = invoke(app, "clients", "list", "--json")

    assert code == 0
    assert registered["client_id"] in table and "Example RP" in table
    assert registered["client_secret"] not in table
    clients = json.loads(listed)
    assert [c["client_id"] for c in clients] == [registered["client_id"]]
    assert "client_secret" not in clients[0]


def test_a_service_is_given_roles_and_the_resource_server_flag(app: Flask) -> None:
    code, stdout, _ = invoke(
        app,
        "clients", "create", "--name", "Provisioner", "--grant-type", "client_credentials",
        "--scope", "admin", "--auth-method", "client_secret_basic", "--role", "developer",
        "--role", "viewer", "--resource-server", "--json",
    )  # fmt: skip

    assert code == 0, stdout
    registered = json.loads(stdout)
    assert registered["roles"] == ["developer", "viewer"]
    assert registered["is_resource_server"] is True
    client = get_client(registered["client_id"])
    assert client is not None and client.role_names == ["developer", "viewer"]


def test_a_client_can_be_registered_for_claims_in_the_id_token(app: Flask) -> None:
    code, stdout, _ = invoke(app, *WEB_CLIENT, "--claims-in-id-token", "--json")
    assert code == 0, stdout
    assert json.loads(stdout)["claims_in_id_token"] is True
    code, stdout, _ = invoke(app, *WEB_CLIENT, "--json")
    assert json.loads(stdout)["claims_in_id_token"] is False


def test_an_unknown_role_is_refused_and_nothing_is_registered(app: Flask) -> None:
    code, _, stderr = invoke(app, *WEB_CLIENT, "--role", "wizard")

    assert code == 1 and "no such role: wizard" in stderr
    db.session.rollback()
    assert db.session.query(Client).count() == 0


def test_the_refresh_token_grace_period_is_set_at_creation_and_by_update(app: Flask) -> None:
    code, stdout, _ = invoke(app, *WEB_CLIENT, "--json")
    registered = json.loads(stdout)
    assert code == 0 and registered["refresh_token_grace_period_seconds"] == 0
    client_id = registered["client_id"]

    code, stdout, _ = invoke(
        app, "clients", "update", client_id, "--refresh-token-grace-period", "20", "--json"
    )
    assert code == 0 and json.loads(stdout)["refresh_token_grace_period_seconds"] == 20
    # An update without the option keeps the value.
    assert invoke(app, "clients", "update", client_id)[0] == 0
    assert get_client(client_id).refresh_token_grace_period_seconds == 20  # type: ignore[union-attr]

    code, _, stderr = invoke(
        app, "clients", "update", client_id, "--refresh-token-grace-period", "61"
    )
    assert code != 0 and "from 0 (no grace) to 60 seconds" in stderr
    code, stdout, _ = invoke(app, *WEB_CLIENT, "--refresh-token-grace-period", "5", "--json")
    assert code == 0 and json.loads(stdout)["refresh_token_grace_period_seconds"] == 5
