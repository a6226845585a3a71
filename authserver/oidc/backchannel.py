"""OpenID Connect Back-Channel Logout 1.0: logout tokens POSTed to each relying party.

https://openid.net/specs/openid-connect-backchannel-1_0.html

When sessions end (`sessions.signals.sessions_ended`, sent by the one function that
revokes sessions), `queue_logout_tokens` adds a row to the outbox table
(`models.BackchannelLogout`) for every client that received an ID Token under one of
them and registered a `backchannel_logout_uri`, in the same transaction as the sign-out
(section 2.5). Nothing is sent inside the request: a slow or dead relying party never
delays a sign-out. A sender (a thread of each serving process, or `authserver logout
deliver --follow`) claims due rows (core.outbox), signs the logout token (section 2.4)
and POSTs it (section 2.5) with a timeout, no redirects and no private addresses in
production (core.fetch); a failure is retried with exponential backoff and given up
after MAX_ATTEMPTS. The tokens of a batch are POSTed in parallel, so one client's
timeout delays no other client's token.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..clients.cache import load_client
from ..core import outbox
from ..core.fetch import FetchError, FetchPolicy, post_form
from ..core.secrets import new_token
from ..extensions import db, precise_utcnow, utcnow
from ..sessions.services import clients_of
from ..sessions.signals import EndedSession, sessions_ended
from .logout_token import create_logout_token
from .models import FAILED, PENDING, SENT, BackchannelLogout
from .subjects import subject_for

log = logging.getLogger("authserver.logout")

EXTENSION = "authserver_backchannel_sender"
# db.session.info key: this transaction queued logout tokens (read by _after_commit).
QUEUED = "authserver.backchannel.queued"
# flask.g key: a commit in this request queued logout tokens; wake the sender when it ends.
NUDGE_AFTER_REQUEST = "authserver_backchannel_nudge"
POLL_SECONDS = 5.0
BATCH_SIZE = 10
# Retries wait 10 s, 20 s, 40 s ... capped at 10 minutes: a relying party unreachable for
# about 20 minutes is given up on (its sessions' tokens have mostly expired by then).
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=10)
MAX_RETRY = timedelta(minutes=10)
_MAX_REASON = 255
# Section 2.8 asks nothing of the answer's body; its first bytes are plenty for a log.
MAX_ANSWER_BYTES = 4096


@dataclass
class Delivery:
    """What one run of the sender did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def queue_logout_tokens(_sender: Any, *, ended: list[EndedSession]) -> int:
    """Section 2.5: owe a logout token to every client of the ended sessions; no commit.

    Receiver of `sessions_ended`. Only clients that are active and registered a
    `backchannel_logout_uri` are owed one. Returns the number of rows added.
    """
    by_id = {session.session_id: session for session in ended}
    pairs = clients_of(list(by_id))
    users: dict[int, User | None] = {}
    added = 0
    for session_id, client_id in pairs:
        client = load_client(client_id)
        if client is None or not client.backchannel_logout_uri:
            continue
        session = by_id[session_id]
        if session.user_id not in users:
            users[session.user_id] = db.session.get(User, session.user_id)
        user = users[session.user_id]
        if user is None:
            continue
        db.session.add(
            BackchannelLogout(
                client_id=client_id,
                sub=subject_for(user, client),
                sid=session.sid,
                jti=new_token(),
                status=PENDING,
                attempts=0,
                next_attempt_at=precise_utcnow(),
                created_at=utcnow(),
            )
        )
        added += 1
    if added:
        db.session.info[QUEUED] = True
    return added


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt."""
    return outbox.retry_delay(attempts, FIRST_RETRY, MAX_RETRY)


def deliver_due(halt: threading.Event | None = None) -> Delivery:
    """Deliver every logout token due now, batch by batch, until none is left or `halt`.

    The tokens of a batch are POSTed at once, each from a thread of its own with its own
    database session, so a relying party that times out holds up no other one. Claims are
    made in a database session of the sender's own, never the caller's unit of work.
    """
    done = Delivery()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config["AUTHSERVER"]
    # A claim outlives the slowest POST of its batch (each is bounded by twice the timeout).
    lease = timedelta(seconds=2 * config.backchannel_logout_timeout + 60)
    with (
        Session(db.engine) as session,
        ThreadPoolExecutor(BATCH_SIZE, thread_name_prefix="authserver-logout-post") as pool,
    ):
        while halt is None or not halt.is_set():
            claimed, held_until = outbox.claim(session, BackchannelLogout, BATCH_SIZE, lease)
            if not claimed:
                break
            leases = [held_until] * len(claimed)
            for outcome in pool.map(partial(_deliver, app), claimed, leases):
                if outcome == SENT:
                    done.sent += 1
                elif outcome == FAILED:
                    done.failed += 1
                else:
                    done.retrying += 1
    return done


def _deliver(app: Flask, row_id: int, lease: Any) -> str:
    """`deliver_one` in a thread of the pool: an app context and a database session of its own."""
    with app.app_context(), Session(db.engine) as session:
        return deliver_one(session, row_id, lease)


def deliver_one(session: Session, row_id: int, lease: Any) -> str:
    """Sign and POST one claimed logout token (section 2.5); its new status."""
    row = session.get(BackchannelLogout, row_id)
    if row is None:
        session.rollback()
        return FAILED
    client_id, sub, sid, jti, attempts = row.client_id, row.sub, row.sid, row.jti, row.attempts
    session.rollback()  # no transaction stays open while a relying party is called
    client = load_client(client_id)
    if client is None or not client.backchannel_logout_uri:
        return _finish(session, row_id, lease, attempts, "no back-channel logout URI", final=True)
    try:
        token = create_logout_token(client, sub=sub, sid=sid, jti=jti)
        answer = post_form(client.backchannel_logout_uri, {"logout_token": token}, _policy())
    except FetchError as error:
        log.warning("back-channel logout to %s failed (attempt %d): %s", client_id, attempts, error)
        return _finish(session, row_id, lease, attempts, str(error))
    except Exception as error:  # one broken row must not stop the others
        log.exception("back-channel logout to %s failed (attempt %d)", client_id, attempts)
        return _finish(session, row_id, lease, attempts, type(error).__name__)
    # Section 2.8: 200 OK on success; "some Web frameworks will substitute" 204.
    if answer.status not in (200, 204):
        log.warning(
            "back-channel logout to %s answered %d (attempt %d)", client_id, answer.status, attempts
        )
        return _finish(session, row_id, lease, attempts, f"HTTP {answer.status}")
    log.info("back-channel logout delivered to %s", client_id)
    return _finish(session, row_id, lease, attempts, None)


def _policy() -> FetchPolicy:
    """How a logout token is POSTed: the server's SSRF rules; http only to a loopback
    address (as client metadata allows); `backchannel_logout_timeout` to connect and to
    read, twice that in all; the first MAX_ANSWER_BYTES of the answer."""
    config = current_app.config["AUTHSERVER"]
    timeout = float(config.backchannel_logout_timeout)
    return FetchPolicy.from_config(
        config,
        allow_loopback_http=True,
        connect_timeout=timeout,
        read_timeout=timeout,
        max_bytes=MAX_ANSWER_BYTES,
    )


def _finish(
    session: Session,
    row_id: int,
    lease: Any,
    attempts: int,
    error: str | None,
    *,
    final: bool = False,
) -> str:
    """Mark the row sent, rescheduled or failed (after MAX_ATTEMPTS, or `final`)."""
    values: dict[str, Any]
    if error is None:
        status, values = SENT, {"sent_at": utcnow(), "reason": None}
    elif final or attempts >= MAX_ATTEMPTS:
        status, values = FAILED, {"reason": error[:_MAX_REASON]}
        log.error(
            "gave up on back-channel logout %d after %d attempts: %s", row_id, attempts, error
        )
    else:
        retry_at = precise_utcnow() + retry_delay(attempts)
        status, values = PENDING, {"next_attempt_at": retry_at, "reason": error[:_MAX_REASON]}
    outbox.finish(session, BackchannelLogout, row_id, lease, status, values)
    return status


def status_counts() -> dict[str, Any]:
    """Rows per status, and when the oldest pending one was queued (`logout status`)."""
    rows = db.session.execute(
        select(BackchannelLogout.status, func.count(BackchannelLogout.id)).group_by(
            BackchannelLogout.status
        )
    ).all()
    counts: dict[str, Any] = {PENDING: 0, SENT: 0, FAILED: 0}
    counts.update({str(status): int(count) for status, count in rows})
    oldest = db.session.scalar(
        select(func.min(BackchannelLogout.created_at)).where(BackchannelLogout.status == PENDING)
    )
    counts["oldest_pending"] = oldest.isoformat() if oldest is not None else None
    return counts


# The thread of a serving process


def init_app(app: Flask) -> None:
    """Subscribe to ended sessions; give `app` its sender thread (in thread mode)."""
    sender = outbox.Worker(
        app,
        lambda halt: deliver_due(halt),
        name="authserver-backchannel-logout",
        label="back-channel logout sender",
        poll_seconds=POLL_SECONDS,
        log=log,
    )
    app.extensions[EXTENSION] = sender
    if app.config["AUTHSERVER"].backchannel_logout_sender == "thread":
        app.before_request(sender.ensure_started)
        app.teardown_request(_nudge_after_request)
    with app.app_context():
        event.listen(db.engine, "engine_disposed", lambda _engine: sender.halt())
    sessions_ended.connect(queue_logout_tokens)
    if not event.contains(db.session, "after_commit", _after_commit):
        event.listen(db.session, "after_commit", _after_commit)


def stop_sender(app: Flask, timeout: float = 10.0) -> None:
    """Stop the app's sender thread for good (when the app is being thrown away)."""
    sender = app.extensions.get(EXTENSION)
    if isinstance(sender, outbox.Worker):
        sender.close(timeout)


def _sender() -> outbox.Worker | None:
    sender = current_app.extensions.get(EXTENSION)
    thread_mode = current_app.config["AUTHSERVER"].backchannel_logout_sender == "thread"
    return sender if isinstance(sender, outbox.Worker) and thread_mode else None


def _nudge_after_request(_error: BaseException | None) -> None:
    """teardown_request: the sign-out's response is complete; wake the sender now."""
    if g.pop(NUDGE_AFTER_REQUEST, False):
        sender = _sender()
        if sender is not None:
            sender.nudge()


def _after_commit(session: Session) -> None:
    """A commit that stored logout tokens wakes the sender (after the request, in one)."""
    if not session.info.pop(QUEUED, False) or not has_app_context():
        return
    if has_request_context():
        g.setdefault(NUDGE_AFTER_REQUEST, True)
        return
    sender = _sender()
    if sender is not None:
        sender.nudge()
