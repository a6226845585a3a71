"""`authserver clients create|update --subject-type --sector-identifier-uri` (OIDC Core 8)."""

from __future__ import annotations

import json

from flask import Flask

from authserver.clients.services import get_client
from tests.unit.cli.test_clients import WEB_CLIENT, invoke

# One redirect host: a pairwise client needs no sector_identifier_uri.
SHOP = [
    "clients", "create", "--name", "Shop",
    "--redirect-uri", "https://shop.example.com/callback",
    "--grant-type", "authorization_code",
    "--scope", "openid profile email", "--auth-method", "client_secret_basic",
]  # fmt: skip


def test_a_pairwise_client_is_created_from_the_command_line(app: Flask) -> None:
    code, stdout, _ = invoke(app, *SHOP, "--subject-type", "pairwise", "--json")
    assert code == 0, stdout
    registered = json.loads(stdout)
    assert registered["subject_type"] == "pairwise"
    client = get_client(registered["client_id"])
    assert client is not None and client.subject_type == "pairwise"


def test_clients_are_public_unless_told(app: Flask) -> None:
    code, stdout, _ = invoke(app, *SHOP, "--json")
    assert code == 0
    assert json.loads(stdout)["subject_type"] == "public"


def test_pairwise_on_two_redirect_hosts_without_a_sector_uri_is_refused(app: Flask) -> None:
    code, stdout, stderr = invoke(app, *WEB_CLIENT, "--subject-type", "pairwise")
    assert code != 0 and stdout == ""
    assert "needs a sector_identifier_uri" in stderr


def test_update_changes_the_subject_type(app: Flask) -> None:
    _, stdout, _ = invoke(app, *SHOP, "--json")
    client_id = json.loads(stdout)["client_id"]
    code, stdout, _ = invoke(
        app, "clients", "update", client_id, "--subject-type", "pairwise", "--json"
    )
    assert code == 0, stdout
    assert json.loads(stdout)["subject_type"] == "pairwise"
    client = get_client(client_id)
    assert client is not None and client.subject_type == "pairwise"


def test_update_refuses_a_sector_uri_it_cannot_fetch(app: Flask) -> None:
    _, stdout, _ = invoke(app, *SHOP, "--json")
    client_id = json.loads(stdout)["client_id"]
    code, _, stderr = invoke(
        app, "clients", "update", client_id, "--sector-identifier-uri", "http://127.0.0.1/s.json"
    )
    assert code != 0
    assert "must be an https URL" in stderr
    client = get_client(client_id)
    assert client is not None and client.sector_identifier_uri is None
