"""The audit log of security events: `record(...)` adds one to the caller's transaction."""

from . import models as models
from .services import record as record
from .services import record_and_commit as record_and_commit

__all__ = ["models", "record", "record_and_commit"]
