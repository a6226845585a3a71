"""First run: tell the person exactly how to create the first admin user and a client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import ScriptInfo, with_appcontext
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..accounts.services import count_users
from ..extensions import db

EXAMPLE_REDIRECT_URI = "http://127.0.0.1:8080/callback"


def command_prefix() -> str:
    """How the person invoked us, so the printed commands work when pasted."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("authserver")
    if script.name != "authserver":
        return "authserver"
    try:
        return str(script.resolve().relative_to(Path.cwd()))
    except ValueError:
        return "authserver"


def first_run_hint() -> str | None:
    """The instructions when nobody can sign in yet, else None (needs an app context)."""
    prefix = command_prefix()
    try:
        users = count_users()
    except (OperationalError, ProgrammingError):
        db.session.rollback()
        return f"The database has no tables yet. Create them first:\n\n  {prefix} db upgrade\n"
    if users:
        return None
    issuer = current_app.config["AUTHSERVER"].issuer
    same_env = (
        "\n(Run them with the same AUTHSERVER_* environment as the server.)\n"
        if any(name.startswith("AUTHSERVER_") for name in os.environ)
        else ""
    )
    return f"""
No users yet. In another terminal, create the first admin (you will be asked for a password)
and a client for your application:

  {prefix} users create admin@example.com --name "Admin" --role admin
  {prefix} clients create --name "My app" \\
      --redirect-uri {EXAMPLE_REDIRECT_URI} \\
      --grant-type authorization_code --grant-type refresh_token \\
      --scope "openid profile email offline_access" --auth-method client_secret_basic
{same_env}
The client's secret is printed only once. Then sign in at {issuer}/login
or follow the walk-through in README.md.
"""


def print_first_run_hint() -> None:
    """Print the hint on stderr for the app of the running command (used by `authserver run`)."""
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        return  # the reloader's child process; the parent already printed it
    app = click.get_current_context().ensure_object(ScriptInfo).load_app()
    with app.app_context():
        hint = first_run_hint()
    if hint:
        click.echo(hint, err=True)


@click.command("setup-hint")
@with_appcontext
def setup_hint_command() -> None:
    """Print how to create the first admin user and client, if there is no user yet."""
    hint = first_run_hint()
    if hint:
        click.echo(hint)
