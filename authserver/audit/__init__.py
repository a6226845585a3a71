"""The audit log of security events: `record(...)` adds one to the caller's transaction."""

from flask import Flask

from . import models as models
from .actor import Actor as Actor
from .actor import act_as as act_as
from .models import AuditEvent as AuditEvent
from .services import printable
from .services import record as record
from .services import record_and_commit as record_and_commit

__all__ = ["Actor", "AuditEvent", "act_as", "init_app", "models", "record", "record_and_commit"]


def init_app(app: Flask) -> None:
    """`|printable` in templates: event fields shown with control characters escaped."""
    app.add_template_filter(printable, "printable")
