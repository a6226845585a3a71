"""OpenID Connect: ID Tokens, claims, UserInfo and discovery."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the UserInfo and discovery endpoints."""
    from . import discovery
    from .userinfo import bp

    app.register_blueprint(bp)
    discovery.init_app(app)
