"""Signing keys: storage encrypted at rest, the JWKS, rotation.

`init_app` puts one `KeyRing` per application at `app.extensions["authserver.keys"]`;
`current_keyring()` returns the current application's.
"""

from __future__ import annotations

from flask import Flask

from ..core import hotpath
from .services import EXTENSION, KeyRing, current_keyring
from .views import bp, jwks_document

__all__ = ["KeyRing", "current_keyring", "init_app"]


def init_app(app: Flask) -> None:
    """Create the app's key ring and register the JWKS route (no database access here).

    The thin layer (core/hotpath.py) serves the JWKS for plain GET and HEAD requests.
    """
    app.extensions[EXTENSION] = KeyRing(app)
    app.register_blueprint(bp)
    app.before_request(_ensure_keys_once)
    hotpath.serve(app, "keys.jwks", jwks_document)


def _ensure_keys_once() -> None:
    """Create missing signers before a request writes anything (SQLite allows one writer)."""
    current_keyring().ensure_ready()
