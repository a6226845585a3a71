"""`authserver users`: manage the people who sign in."""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

users_cli = AppGroup("users", help="Manage users.")


def _read_password(password: str | None, password_stdin: bool) -> str:
    """The password from --password, from stdin, or typed at a hidden prompt."""
    if password is not None and password_stdin:
        raise click.UsageError("give either --password or --password-stdin, not both")
    if password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if password is not None:
        return password
    if sys.stdin.isatty():
        value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        return value
    raise click.UsageError("give --password P or --password-stdin")


@users_cli.command("create")
@click.argument("email")
@click.option("--password", help="The password (visible in the process list; prefer stdin).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option("--name", default="", help='Full name, e.g. "Ada Lovelace".')
@click.option(
    "--role", "roles", multiple=True, help="A role (admin, developer, viewer, ...); repeatable."
)
def create_user_command(
    email: str, password: str | None, password_stdin: bool, name: str, roles: tuple[str, ...]
) -> None:
    """Create a user whose e-mail address counts as verified."""
    from ..accounts.services import AccountError, create_user

    secret = _read_password(password, password_stdin)
    if not secret:
        raise click.UsageError("the password must not be empty")
    try:
        user = create_user(
            email, password=secret, name=name, roles=list(roles), email_verified=True
        )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    roles_text = ", ".join(user.role_names) or "no roles"
    click.echo(f"Created user {user.email} (sub {user.sub}; {roles_text}).")
