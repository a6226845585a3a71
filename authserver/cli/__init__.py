"""The `authserver` command: Flask's CLI plus users, clients, keys, roles, audit and mail.

Other tools script against these commands, so names and flags are stable. Output
meant for machines (`--json`) goes to stdout alone; logs and errors go to stderr.
"""

from __future__ import annotations

import sys
from typing import Any

import click
from flask import Flask
from flask.cli import FlaskGroup, routes_command, run_command, shell_command

from .. import create_app
from ..config import ConfigError
from .audit import audit_cli
from .cleanup import cleanup_command
from .clients import clients_cli
from .first_run import print_first_run_hint, setup_hint_command
from .keys import keys_cli
from .logout import logout_cli
from .mail import mail_cli
from .roles import roles_cli
from .users import users_cli


def register_commands(app: Flask) -> None:
    """Add the authserver command groups to `app.cli` (called by create_app)."""
    app.cli.add_command(users_cli)
    app.cli.add_command(clients_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(roles_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(cleanup_command)
    app.cli.add_command(mail_cli)
    app.cli.add_command(logout_cli)
    app.cli.add_command(setup_hint_command)


def _create_app() -> Flask:
    """Build the app for a command; an invalid setting ends with one line naming it."""

    try:
        return create_app()
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _run_with_first_run_hint() -> click.Command:
    """`authserver run`: Flask's development server, after the first-run hint."""
    original = run_command.callback
    assert original is not None

    def callback(*args: Any, **kwargs: Any) -> Any:
        print_first_run_hint()
        return original(*args, **kwargs)

    return click.Command(
        "run",
        callback=callback,
        params=run_command.params,
        help=run_command.help,
        short_help=run_command.short_help,
    )


def main() -> None:
    """Console script `authserver` (pyproject.toml [project.scripts])."""
    cli = FlaskGroup(
        name="authserver",
        create_app=_create_app,
        add_default_commands=False,
        help="authserver: an OAuth 2.0 and OpenID Connect authorization server.",
    )
    cli.add_command(_run_with_first_run_hint())
    cli.add_command(shell_command)
    cli.add_command(routes_command)
    cli.main(prog_name="authserver")
