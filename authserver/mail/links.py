"""What e-mails link to and how they word a lifetime: one place for every mail.

A link in a mail is absolute and built on the issuer (`AUTHSERVER_ISSUER`), never on
the request's Host header: a forged Host must not turn a reset mail into a link to
someone else's server (OWASP Forgot Password Cheat Sheet, "URL tokens").
"""

from __future__ import annotations

from typing import Any

from flask import current_app


def absolute_url(endpoint: str, **values: Any) -> str:
    """The issuer-based URL of an endpoint, for e-mails (works outside a request too)."""
    config = current_app.config["AUTHSERVER"]
    path = current_app.url_map.bind("localhost").build(endpoint, values)
    return f"{config.issuer}{path}"


def describe_duration(seconds: int) -> str:
    """A lifetime in words: "30 minutes", "24 hours", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and not (unit == "day" and seconds <= 86400):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
