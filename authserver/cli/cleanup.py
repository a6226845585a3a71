"""`authserver cleanup`: purge expired codes, tokens, sessions and old audit entries (for cron)."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from ..keys import current_keyring
from ..maintenance import DEFAULT_BATCH_SIZE, DEFAULT_GRACE, DEFAULT_PAUSE, cleanup, cutoffs


@click.command("cleanup")
@click.option(
    "--grace",
    type=click.IntRange(min=0),
    default=int(DEFAULT_GRACE.total_seconds()),
    show_default=True,
    help="Seconds to keep codes, tokens and sessions after they expire or are revoked.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows deleted per statement (each batch is its own short transaction).",
)
@click.option(
    "--pause",
    type=click.FloatRange(min=0),
    default=DEFAULT_PAUSE,
    show_default=True,
    help="After each batch, rest this many times as long as the batch took (0: no rest).",
)
@with_appcontext
def cleanup_command(grace: int, batch_size: int, pause: float) -> None:
    """Delete rows past their time and print how many went per table.

    Safe to run from cron on several instances at once.
    """

    limits = cutoffs(current_app.config["AUTHSERVER"], grace=timedelta(seconds=grace))
    for table, count in cleanup(limits, batch_size=batch_size, pause=pause).items():
        click.echo(f"{table}: {count}")
    # Signing keys no longer published (keys/schedule.py: retired, or revoked long enough).
    click.echo(f"signing_keys: {current_keyring().prune()}")
