"""What the commands share: who acts (the CLI), finding records, failing clearly."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import click

from ..roles.ceiling import CLI, Actor

if TYPE_CHECKING:
    from ..accounts.models import Role, User
    from ..clients.models import Client


def cli_actor() -> Actor:
    """The actor of every change made from the command line (audit log: system, "cli").

    Whoever runs the command holds the server's database and secret already: the system
    acts with every permission, through the same services (and ceiling) as everyone else.
    """
    return CLI


def fail(message: str) -> NoReturn:
    """Undo anything half-done and exit non-zero with "Error: message" on stderr."""
    from ..extensions import db

    db.session.rollback()
    raise click.ClickException(message)


def find_user(email: str) -> User:
    """The person with this e-mail address (any case), or exit with an error."""
    from sqlalchemy import select

    from ..accounts.models import User
    from ..accounts.services import normalize_email
    from ..extensions import db

    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        fail(f"no user with the e-mail address {email!r}")
    return user


def find_client(client_id: str) -> Client:
    """The client with this client_id, active or not, or exit with an error."""
    from ..clients.services import get_client

    client = get_client(client_id)
    if client is None:
        fail(f"no client with client_id {client_id!r}")
    return client


def find_role(name: str) -> Role:
    """The role with this name, or exit with an error."""
    from ..roles.services import get_role

    role = get_role(name)
    if role is None:
        fail(f"no role named {name!r} (see `authserver roles list`)")
    return role
