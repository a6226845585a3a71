"""Signing keys: storage encrypted at rest, the JWKS, rotation.

`init_app` puts one `KeyRing` per application at `app.extensions["authserver.keys"]`;
`current_keyring()` returns the current application's.
"""

from __future__ import annotations

from flask import Flask

from .services import EXTENSION, KeyRing, current_keyring
from .views import bp

__all__ = ["KeyRing", "current_keyring", "init_app"]


def init_app(app: Flask) -> None:
    """Create the app's key ring and register the JWKS route (no database access here)."""
    app.extensions[EXTENSION] = KeyRing(app)
    app.register_blueprint(bp)
    app.before_request(_ensure_keys_once)


def _ensure_keys_once() -> None:
    """Create missing signers before a request writes anything (SQLite allows one writer)."""
    keyring = current_keyring()
    if not keyring.ready:
        keyring.ensure_keys()
