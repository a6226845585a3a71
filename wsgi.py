"""WSGI entry point: `gunicorn -w 2 wsgi:app`."""

import atexit
import sys

from authserver import create_app
from authserver.audit.tally import flush_all
from authserver.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line naming the setting, not a traceback.
    print(f"authserver: invalid configuration: {error}", file=sys.stderr)
    raise SystemExit(1) from None

# Counted audit events still open in this worker are written when it stops.
atexit.register(flush_all, app)
