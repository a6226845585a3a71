"""Send limits: how much mail one recipient, one account and one client IP may cause.

Counted when a message is queued, in the rate limit storage (Redis when configured, so
every instance agrees; per-process memory otherwise), in moving windows given by
`AUTHSERVER_MAIL_LIMIT_RECIPIENT`, `_ACCOUNT` and `_IP`. A message over any of them is
stored as suppressed instead of pending, and the page that caused it answers as usual:
a form cannot be turned into a mail cannon (OWASP Forgot Password Cheat Sheet: "Ensure
that the mail is rate limited"), and the answer tells nobody whether a mail went out.
Keys are hashed, so no address is written to Redis.
"""

from __future__ import annotations

import logging

from flask import current_app, has_request_context
from limits import parse_many
from limits.errors import StorageError
from limits.strategies import MovingWindowRateLimiter

from ..core.secrets import hash_secret
from ..security import ratelimit

log = logging.getLogger("authserver.mail")

NAMESPACE = "mail"


def _hashed(value: str) -> str:
    return hash_secret(value)[:32]


def over_limit(recipient: str, account: str) -> str | None:
    """Count one message; the name of the first limit it is over, or None when it may go.

    `account` names the account the message is about or the person who caused it.
    Every applicable window is counted for every message, so a message to an unknown
    address costs the same as one to a known address. When the storage is unreachable
    the message goes (and a warning is logged): mail must not stop with Redis.
    """
    config = current_app.config["AUTHSERVER"]
    if not config.ratelimit_enabled:
        return None
    keys = [
        ("recipient", config.mail_limit_recipient, _hashed(recipient.lower())),
        ("account", config.mail_limit_account, _hashed(account)),
    ]
    if has_request_context():
        keys.append(("ip", config.mail_limit_ip, ratelimit.client_ip()))
    over = None
    try:
        strategy = MovingWindowRateLimiter(ratelimit.storage())
        for name, spec, key in keys:
            for item in parse_many(spec):
                # hit() records nothing once a window is full: suppressed mail spends no budget.
                if not strategy.hit(item, NAMESPACE, name, key) and over is None:
                    over = name
    except StorageError:
        log.warning("rate limit storage unreachable; mail is sent without send limits")
        return None
    return over
