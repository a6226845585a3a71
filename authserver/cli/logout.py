"""`authserver logout`: deliver the back-channel logout outbox, and see what waits in it.

With `AUTHSERVER_BACKCHANNEL_LOGOUT_SENDER=external`, run `authserver logout deliver
--follow` as its own service; with the default (`thread`) every serving process delivers
by itself and `deliver` is only needed to push out what is due right now.
"""

from __future__ import annotations

import json
import logging
import time

import click
from flask.cli import AppGroup

from ..extensions import db
from ..oidc.backchannel import deliver_due, status_counts

logout_cli = AppGroup("logout", help="Deliver back-channel logout tokens and show their state.")

log = logging.getLogger("authserver.logout")


@logout_cli.command("deliver")
@click.option("--follow", "-f", is_flag=True, help="Keep delivering as tokens come (Ctrl-C ends).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="With --follow: seconds between looks at the outbox.",
)
def deliver_command(follow: bool, interval: float) -> None:
    """POST every logout token that is due; print how many went, wait for a retry, or failed.

    Safe next to other senders: a token is claimed by one sender before it is sent.
    """

    if not follow:
        done = deliver_due()
        click.echo(f"sent: {done.sent}\nretrying: {done.retrying}\nfailed: {done.failed}")
        return
    try:
        while True:
            try:
                deliver_due()
            except Exception:  # the database may be away for a moment: say so, carry on
                log.exception("logout delivery failed; trying again in %.0f s", interval)
                db.session.rollback()
            db.session.remove()
            time.sleep(interval)
    except KeyboardInterrupt:
        return


@logout_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status_command(as_json: bool) -> None:
    """Logout tokens per status (pending, sent, failed) and the oldest pending one."""

    counts = status_counts()
    if as_json:
        click.echo(json.dumps(counts))
        return
    for name, value in counts.items():
        click.echo(f"{name}: {value if value is not None else '-'}")
