"""`authserver users`: manage the people who sign in."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from flask.cli import AppGroup

from ..accounts.lifecycle import set_password
from ..accounts.models import User
from ..accounts.services import AccountError, list_users
from ..admin.serializers import serialize_user
from ..admin.services.base import AdminError
from ..admin.services.users import create_user_as_admin, set_user_active
from ..roles.services import RoleError, assign_role, remove_role
from .lookup import cli_actor, fail, find_role, find_user

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

    secret = _read_password(password, password_stdin)
    if not secret:
        raise click.UsageError("the password must not be empty")
    try:
        user = create_user_as_admin(
            email, name, secret, list(roles), email_verified=True, actor=cli_actor()
        )
    except AdminError as exc:
        fail(str(exc))
    roles_text = ", ".join(user.role_names) or "no roles"
    click.echo(f"Created user {user.email} (sub {user.sub}; {roles_text}).")


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array on stdout.")
def list_users_command(as_json: bool) -> None:
    """List people by e-mail address, with their roles and status."""

    users = list_users()
    if as_json:
        click.echo(json.dumps([_describe(user) for user in users], indent=2))
        return
    if not users:
        click.echo("No users yet. Create one with `authserver users create --help`.")
        return
    click.echo(f"{'e-mail':<36} {'sub':<24} {'status':<10} roles")
    for user in users:
        status = "active" if user.is_active else "disabled"
        click.echo(
            f"{user.email:<36} {user.sub:<24} {status:<10} {', '.join(user.role_names) or '-'}"
        )


def _describe(user: User) -> dict[str, Any]:
    """A person as the admin API shows them, plus the CLI's documented `two_step` key."""
    return {**serialize_user(user), "two_step": user.totp_enabled_at is not None}


@users_cli.command("disable")
@click.argument("email")
def disable_user_command(email: str) -> None:
    """Disable a person: they cannot sign in; their sessions and tokens end."""
    _set_active(email, active=False)


@users_cli.command("enable")
@click.argument("email")
def enable_user_command(email: str) -> None:
    """Let a disabled person sign in again."""
    _set_active(email, active=True)


def _set_active(email: str, *, active: bool) -> None:
    """Enable or disable through the admin service (audit event admin.user.*)."""

    user = find_user(email)
    try:
        set_user_active(user, active, actor=cli_actor())
    except AdminError as exc:
        fail(str(exc))
    click.echo(f"{'Enabled' if active else 'Disabled'} {user.email}.")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password", help="The new password (visible in the process list; prefer stdin).")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
def set_password_command(email: str, password: str | None, password_stdin: bool) -> None:
    """Set a person's password; all their sessions end, their tokens are revoked, and they
    are told by e-mail (accounts.lifecycle.set_password)."""
    user = find_user(email)
    secret = _read_password(password, password_stdin)
    try:
        set_password(user, secret, reason="admin", actor=cli_actor())
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"Set the password of {user.email}; their sessions and tokens were revoked.")


@users_cli.command("add-role")
@click.argument("email")
@click.argument("role")
def add_role_command(email: str, role: str) -> None:
    """Give a person an existing role."""

    user = find_user(email)
    if role in user.role_names:
        click.echo(f"{user.email} already holds {role}.")
        return
    try:
        assign_role(user, role, actor=cli_actor())
    except RoleError as exc:
        fail(str(exc))
    click.echo(f"{user.email} now holds: {', '.join(user.role_names)}.")


@users_cli.command("remove-role")
@click.argument("email")
@click.argument("role")
def remove_role_command(email: str, role: str) -> None:
    """Take a role from a person (the last active admin keeps admin)."""

    user = find_user(email)
    find_role(role)
    if role not in user.role_names:
        fail(f"{user.email} does not hold the role {role!r}")
    try:
        remove_role(user, role, actor=cli_actor())
    except RoleError as exc:
        fail(str(exc))
    click.echo(f"{user.email} now holds: {', '.join(user.role_names) or 'no roles'}.")
