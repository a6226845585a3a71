"""GET /.well-known/jwks.json: the published public keys (RFC 7517 section 5).

`jwks_document` is the endpoint: the thin layer (core/hotpath.py) sends it for plain
GET and HEAD requests, and the Flask view returns it for every other one.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app

from ..core.hotpath import Document
from .services import current_keyring

bp = Blueprint("keys", __name__)


def jwks_document(app: Flask) -> Document:
    """The key set of `app`, serialised at the last reload; its keys made if there are none."""
    keyring = current_keyring(app)
    keyring.ensure_ready()
    # Shorter than AUTHSERVER_KEY_PREPUBLISH_SECONDS (config.py checks it): a relying
    # party's copy expires before any key it lacks signs.
    max_age = app.config["AUTHSERVER"].jwks_max_age
    cache_control = ("Cache-Control", f"public, max-age={max_age}")
    return Document(keyring.jwks_json(), "application/json", (cache_control,))


@bp.get("/.well-known/jwks.json")
def jwks() -> Response:
    """The key set (cross-origin readable: core/capabilities.py lists it as public)."""
    return jwks_document(current_app).response()
