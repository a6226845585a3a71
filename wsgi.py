"""WSGI entry point: `gunicorn -w 2 wsgi:app`."""

import sys

from authserver import create_app
from authserver.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    # One line naming the setting, not a traceback.
    print(f"authserver: invalid configuration: {error}", file=sys.stderr)
    raise SystemExit(1) from None
