"""What the commands share: who acts (the CLI), finding records, failing clearly."""

from __future__ import annotations

from typing import NoReturn

import click

from ..accounts.models import Role, User
from ..accounts.services import find_by_email, normalize_email
from ..audit import Actor
from ..clients.models import Client
from ..clients.services import get_client
from ..extensions import db
from ..roles.ceiling import CLI
from ..roles.services import get_role


def cli_actor() -> Actor:
    """The actor of every change made from the command line (audit log: system, "cli").

    Whoever runs the command holds the server's database and secret already: the system
    acts with every permission, through the same services (and ceiling) as everyone else.
    """
    return CLI


def fail(message: str) -> NoReturn:
    """Undo anything half-done and exit non-zero with "Error: message" on stderr."""

    db.session.rollback()
    raise click.ClickException(message)


def find_user(email: str) -> User:
    """The person with this e-mail address (any case), or exit with an error."""

    user = find_by_email(normalize_email(email))
    if user is None:
        fail(f"no user with the e-mail address {email!r}")
    return user


def find_client(client_id: str) -> Client:
    """The client with this client_id, active or not, or exit with an error."""

    client = get_client(client_id)
    if client is None:
        fail(f"no client with client_id {client_id!r}")
    return client


def find_role(name: str) -> Role:
    """The role with this name, or exit with an error."""

    role = get_role(name)
    if role is None:
        fail(f"no role named {name!r} (see `authserver roles list`)")
    return role
