"""The audit log of security events."""

from . import models as models
