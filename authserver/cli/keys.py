"""`authserver keys`: the signing keys published in the JWKS, and their rotation schedule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from ..accounts.totp import reencrypt_secrets
from ..core.capabilities import SIGNING_ALGS
from ..keys import current_keyring
from ..keys.services import KeyInfo

keys_cli = AppGroup("keys", help="Manage signing keys.")

# What an emergency rotation costs, printed before and after it (README "Signing keys").
EMERGENCY_COST = (
    "An emergency rotation signs with the new key at once and unpublishes every older key "
    "of the algorithm at once:\n"
    "  - every token those keys signed (access tokens, id_tokens) stops verifying here at "
    "once, and at relying parties and resource servers as soon as they fetch the JWKS "
    "again;\n"
    "  - until they fetch it, relying parties holding a cached JWKS cannot verify the new "
    "tokens either (the JWKS's max-age is {max_age} s; some libraries keep it longer);\n"
    "  - refresh tokens and sign-in sessions are not signed and stay valid: clients get "
    "new tokens by refreshing."
)
NOW_COST = (
    "The new key signs at once: relying parties holding a cached JWKS (max-age {max_age} s) "
    "cannot verify its tokens until they fetch it again. The old key stays published until "
    "its tokens expire."
)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _describe(keys: Iterable[KeyInfo]) -> None:
    """One line per key: kid, alg, state, and the times of its life (UTC)."""
    rows = list(keys)
    if not rows:
        click.echo("No signing keys yet (they are created on first use or by `keys ensure`).")
        return
    click.echo(
        f"{'kid':<44} {'alg':<6} {'state':<9} {'published (UTC)':<20} {'signs from':<20} "
        f"{'signs until':<20} {'unpublished':<20}"
    )
    for key in rows:
        gone = key.revoked_at if key.revoked_at is not None else key.unpublished_at
        click.echo(
            f"{key.kid:<44} {key.alg:<6} {key.status:<9} {_when(key.created_at):<20} "
            f"{_when(key.activates_at):<20} {_when(key.retired_at):<20} {_when(gone):<20}"
        )


@keys_cli.command("list")
def list_keys_command() -> None:
    """List the signing keys, newest first: next, signing, retiring, retired, revoked."""

    _describe(current_keyring().list_keys())


@keys_cli.command("rotate")
@click.option(
    "--alg",
    type=click.Choice(SIGNING_ALGS),
    default=None,
    help="Rotate only this algorithm's key (default: every algorithm).",
)
@click.option(
    "--now",
    "immediately",
    is_flag=True,
    help="Sign with the new key at once instead of after AUTHSERVER_KEY_PREPUBLISH_SECONDS.",
)
@click.option(
    "--emergency",
    is_flag=True,
    help="After a leak: sign with the new key at once and revoke every older key at once.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (with --emergency).")
def rotate_keys_command(alg: str | None, immediately: bool, emergency: bool, yes: bool) -> None:
    """Publish new keys now; they sign after the pre-publication time (or at once)."""

    config = current_app.config["AUTHSERVER"]
    if emergency:
        click.echo(EMERGENCY_COST.format(max_age=config.jwks_max_age))
        if not yes:
            click.confirm("Revoke the current keys now?", abort=True)
    keyring = current_keyring()
    new_keys = keyring.rotate(alg, immediately=immediately, revoke=emergency)
    kids = {key.kid for key in new_keys}
    click.echo("New signing keys:")
    _describe(k for k in keyring.list_keys() if k.kid in kids)
    if emergency:
        click.echo("Revoked: every older key of " + (alg or ", ".join(SIGNING_ALGS)) + ".")
    elif immediately:
        click.echo(NOW_COST.format(max_age=config.jwks_max_age))
    else:
        starts = min(key.activates_at for key in new_keys)
        click.echo(
            f"Published now; signing from {_when(starts)} UTC "
            f"(AUTHSERVER_KEY_PREPUBLISH_SECONDS={config.key_prepublish_seconds}). "
            "The current keys sign until then and stay published until their tokens expire."
        )


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
