"""GET /.well-known/jwks.json: the published public keys (RFC 7517 section 5)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from .services import current_keyring

bp = Blueprint("keys", __name__)

# Relying parties cache the key set; keep it short so a rotation is seen soon.
MAX_AGE_CAP = 300


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """The key set, served from the body serialised at the last reload."""
    config = current_app.config["AUTHSERVER"]
    response = Response(current_keyring().jwks_json(), mimetype="application/json")
    max_age = min(2 * config.cache_ttl, MAX_AGE_CAP)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    # Public document: browser-based relying parties fetch it cross-origin.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
