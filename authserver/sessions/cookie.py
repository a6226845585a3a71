"""Flask's signed-cookie session (CSRF token, flashed messages), built once per app.

Flask builds a new itsdangerous serializer on every request, even one that carries
no cookie (an API call); the secret keys are fixed at start-up, so one per app serves.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's SecureCookieSessionInterface with its signing serializer cached (one app each)."""

    def __init__(self) -> None:
        self._serializer: Any = None

    def get_signing_serializer(self, app: Flask) -> Any:
        if self._serializer is None:
            self._serializer = super().get_signing_serializer(app)
        return self._serializer
