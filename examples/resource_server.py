"""A small API protected by authserver's access tokens, verified offline.

    AUTHSERVER_ISSUER=http://127.0.0.1:5000 API_AUDIENCE=http://127.0.0.1:5000 \
        .venv/bin/python examples/resource_server.py

Tokens are accepted when their `aud` is API_AUDIENCE (the issuer by default, which is
what authserver puts in `aud` when no `resource` is asked for).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify

from authserver.resource import ResourceServer, current_token


def create_api(issuer: str, audience: str) -> Flask:
    """The example API: one open route, one needing a scope, one needing a role."""
    app = Flask(__name__)
    tokens = ResourceServer(issuer=issuer, audience=audience)

    @app.get("/health")
    def health() -> Any:
        return jsonify(status="ok")

    @app.get("/notes")
    @tokens.require_token(scopes=["notes:read"])
    def notes() -> Any:
        claims = current_token()
        return jsonify(owner=claims["sub"], notes=[f"hello, {claims['sub']}"])

    @app.get("/admin/stats")
    @tokens.require_token(roles=["admin"])
    def stats() -> Any:
        return jsonify(requests_served=42)

    return app


if __name__ == "__main__":
    issuer = os.environ.get("AUTHSERVER_ISSUER", "http://127.0.0.1:5000")
    create_api(issuer, os.environ.get("API_AUDIENCE", issuer)).run(port=8081)
