"""`authserver clients show|rotate-secret|disable|delete`, each change audited.

A client_id may start with "-", so the tests put "--" before it, as scripts should.
"""

from __future__ import annotations

import json

from click.testing import Result
from flask import Flask
from sqlalchemy import select

from authserver.audit.models import AuditEvent
from authserver.clients.services import get_client
from authserver.core.secrets import hash_secret
from authserver.extensions import db
from tests.factories import make_client

UNKNOWN = "no-such-client"


def run(app: Flask, *args: str, stdin: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=stdin)


def cli_event(name: str) -> AuditEvent:
    db.session.rollback()
    (row,) = db.session.scalars(select(AuditEvent).where(AuditEvent.event == name))
    assert (row.actor_type, row.actor) == ("system", "cli")
    return row


def test_show_prints_metadata_and_never_the_secret(app: Flask) -> None:
    rp, secret = make_client(name="Photo Printer")
    assert secret is not None

    text = run(app, "clients", "show", "--", rp.client_id)
    assert text.exit_code == 0 and "Photo Printer" in text.stdout
    shown = json.loads(run(app, "clients", "show", "--json", "--", rp.client_id).stdout)
    assert shown["client_id"] == rp.client_id
    assert shown["client_name"] == "Photo Printer"
    assert secret not in text.stdout and "client_secret" not in shown


def test_rotate_secret_prints_the_new_secret_once(app: Flask) -> None:
    rp, old = make_client()
    result = run(app, "clients", "rotate-secret", "--json", "--", rp.client_id)

    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["client_id"] == rp.client_id and body["client_secret"] != old
    client = get_client(rp.client_id)
    assert client is not None and client.client_secret_hash == hash_secret(body["client_secret"])
    event = cli_event("admin.client.secret_rotated")
    assert event.client_id == rp.client_id
    assert body["client_secret"] not in json.dumps(event.details)


def test_a_public_client_has_no_secret_to_rotate(app: Flask) -> None:
    rp, _ = make_client(auth_method="none")
    result = run(app, "clients", "rotate-secret", "--", rp.client_id)
    assert result.exit_code == 1
    assert "public client" in result.stderr


def test_disable(app: Flask) -> None:
    rp, _ = make_client()
    assert run(app, "clients", "disable", "--", rp.client_id).exit_code == 0
    db.session.rollback()
    client = get_client(rp.client_id)
    assert client is not None and client.is_active is False
    assert cli_event("admin.client.disabled").subject == rp.client_id


def test_delete_asks_first_and_yes_skips_the_question(app: Flask) -> None:
    rp, _ = make_client()
    declined = run(app, "clients", "delete", "--", rp.client_id, stdin="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert get_client(rp.client_id) is not None

    confirmed = run(app, "clients", "delete", "--", rp.client_id, stdin="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    db.session.rollback()
    assert get_client(rp.client_id) is None
    assert cli_event("admin.client.deleted").client_id == rp.client_id

    other, _ = make_client(name="Other")
    assert run(app, "clients", "delete", "--yes", "--", other.client_id).exit_code == 0
    db.session.rollback()
    assert get_client(other.client_id) is None


def test_unknown_clients_fail_clearly(app: Flask) -> None:
    for command in ("show", "rotate-secret", "disable", "delete"):
        args = ["clients", command, UNKNOWN] + (["--yes"] if command == "delete" else [])
        result = run(app, *args)
        assert result.exit_code == 1, command
        assert f"no client with client_id {UNKNOWN!r}" in result.stderr
