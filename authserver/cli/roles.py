"""`authserver roles`: named sets of permissions that people hold."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from ..admin.serializers import serialize_role
from ..roles.permissions import PERMISSIONS
from ..roles.services import RoleError, create_role, delete_role, list_roles, role_holders
from .lookup import cli_actor, fail, find_role

roles_cli = AppGroup("roles", help="Manage roles and their permissions.")


@roles_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array on stdout.")
def list_roles_command(as_json: bool) -> None:
    """List the roles, built-in ones first."""

    roles = [serialize_role(role) for role in list_roles()]
    if as_json:
        click.echo(json.dumps(roles, indent=2))
        return
    click.echo(f"{'name':<20} {'kind':<9} permissions")
    for role in roles:
        kind = "built-in" if role["builtin"] else "custom"
        click.echo(f"{role['name']:<20} {kind:<9} {' '.join(role['permissions']) or '-'}")


@roles_cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show_role_command(name: str, as_json: bool) -> None:
    """Show a role: its permissions and how many people hold it."""
    role = find_role(name)
    described = {**serialize_role(role), "holders": len(role_holders(role))}
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    for key, value in described.items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key + ':':<13} {'-' if shown in ('', None, []) else shown}")


@roles_cli.command("create")
@click.argument("name")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    help="A permission from the catalogue (e.g. users:read); repeatable.",
)
@click.option("--description", default="", help="What the role is for.")
def create_role_command(name: str, permissions: tuple[str, ...], description: str) -> None:
    """Create a custom role with permissions from the catalogue."""

    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        fail(
            f"unknown permission: {', '.join(unknown)}; known permissions: {', '.join(PERMISSIONS)}"
        )
    try:
        role = create_role(
            name, description=description, permissions=permissions, actor=cli_actor()
        )
    except RoleError as exc:
        fail(str(exc))
    click.echo(f"Created role {role.name} ({' '.join(role.permissions) or 'no permissions'}).")


@roles_cli.command("delete")
@click.argument("name")
def delete_role_command(name: str) -> None:
    """Delete a custom role; people holding it lose it. Built-in roles stay."""

    role = find_role(name)
    try:
        delete_role(role, actor=cli_actor())
    except RoleError as exc:
        fail(str(exc))
    click.echo(f"Deleted role {name}.")
