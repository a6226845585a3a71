"""A small API protected by authserver's access tokens, verified offline.

    AUTHSERVER_ISSUER=http://127.0.0.1:5000 API_AUDIENCE=http://127.0.0.1:5000 \
    API_CORS_ORIGINS=http://localhost:8000 .venv/bin/python examples/resource_server.py

Tokens are accepted when their `aud` is API_AUDIENCE (the issuer by default, which is
what authserver puts in `aud` when no `resource` is asked for). Browser apps on the
API_CORS_ORIGINS (space separated, e.g. the example SPA) may call it cross-origin.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, jsonify, request

from authserver.resource import ResourceServer, current_token


def create_api(issuer: str, audience: str, cors_origins: Iterable[str] = ()) -> Flask:
    """The example API: one open route, one needing a scope, one needing a role."""
    app = Flask(__name__)
    tokens = ResourceServer(issuer=issuer, audience=audience)
    allowed_origins = frozenset(cors_origins)

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

    @app.after_request
    def cors(response: Response) -> Response:
        """CORS for the listed browser origins; tokens come in a header, so no credentials."""
        response.vary.add("Origin")
        origin = request.headers.get("Origin")
        if origin in allowed_origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "WWW-Authenticate"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = "GET"
                response.headers["Access-Control-Allow-Headers"] = "Authorization"
                response.headers["Access-Control-Max-Age"] = "600"
        return response

    return app


if __name__ == "__main__":
    issuer = os.environ.get("AUTHSERVER_ISSUER", "http://127.0.0.1:5000")
    origins = os.environ.get("API_CORS_ORIGINS", "").split()
    create_api(issuer, os.environ.get("API_AUDIENCE", issuer), origins).run(port=8081)
