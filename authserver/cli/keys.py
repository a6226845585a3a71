"""`authserver keys`: the signing keys published in the JWKS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import click
from flask.cli import AppGroup

from ..accounts.totp import reencrypt_secrets
from ..core.capabilities import SIGNING_ALGS
from ..keys import current_keyring

keys_cli = AppGroup("keys", help="Manage signing keys.")


def _describe(keys: Iterable[Any]) -> None:
    """One line per key: kid, alg, created, and where it is in its life."""
    rows = list(keys)
    if not rows:
        click.echo("No signing keys yet (they are created on first use or by `keys ensure`).")
        return
    click.echo(f"{'kid':<44} {'alg':<6} {'created (UTC)':<20} status")
    for key in rows:
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        status = getattr(key, "status", None) or ("active" if key.retired_at is None else "retired")
        if key.retired_at is not None:
            status += f" (retired {key.retired_at:%Y-%m-%d %H:%M:%S})"
        click.echo(f"{key.kid:<44} {key.alg:<6} {created:<20} {status}")


@keys_cli.command("list")
def list_keys_command() -> None:
    """List the signing keys, newest first."""

    _describe(current_keyring().list_keys())


@keys_cli.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(SIGNING_ALGS),
    default=None,
    help="Rotate only this algorithm's key (default: every algorithm).",
)
def rotate_keys_command(alg: str | None) -> None:
    """Make new keys the signers; older keys stay published until their tokens expire."""

    new_keys = current_keyring().rotate(alg)
    click.echo("New signing keys:")
    _describe(new_keys)


@keys_cli.command("ensure")
def ensure_keys_command() -> None:
    """Create the signing keys if there are none yet (run by `make run`)."""

    keyring = current_keyring()
    keyring.ensure_keys()
    _describe(keyring.list_keys())


@keys_cli.command("reencrypt")
def reencrypt_command() -> None:
    """Re-encrypt private keys and TOTP secrets under the current AUTHSERVER_SECRET_KEY.

    Run once after moving the old secret to AUTHSERVER_SECRET_KEY_FALLBACKS; then the
    fallback can be removed.
    """

    keys = current_keyring().reencrypt_all()
    secrets = reencrypt_secrets()
    click.echo(f"re-encrypted {keys} signing keys and {secrets} two-step secrets")
