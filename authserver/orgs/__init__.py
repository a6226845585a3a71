"""Organizations, their members and invitations."""

from . import models as models
