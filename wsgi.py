"""WSGI entry point: `gunicorn -w 2 wsgi:app`."""

import atexit
import contextlib
import ctypes
import sys

from authserver import create_app
from authserver.audit.tally import flush_all
from authserver.config import ConfigError

# glibc's default moves its mmap threshold up after a large block is freed, so the 19 MiB
# an argon2id hash allocates would stay in the heap of every worker after its first
# sign-in. A fixed threshold returns such blocks to the system when they are freed.
M_MMAP_THRESHOLD = -3
with contextlib.suppress(OSError):  # not glibc (e.g. musl): nothing to tune
    ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1024 * 1024)

try:
    app = create_app(migrations=False)
except ConfigError as error:
    # One line naming the setting, not a traceback.
    print(f"authserver: invalid configuration: {error}", file=sys.stderr)
    raise SystemExit(1) from None

# Counted audit events still open in this worker are written when it stops.
atexit.register(flush_all, app)
