"""The console's page about signing keys: list them, rotate them."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from ..forms import RotateKeysForm
from ..services import keys as services
from .base import actor, bp, require_permission


@bp.get("/keys")
@require_permission("keys:read")
def keys() -> ResponseReturnValue:
    """Every signing key with its status."""
    return render_template(
        "admin/keys.html",
        section="keys",
        keys=services.list_signing_keys(),
        form=RotateKeysForm(),
        prepublish=current_app.config["AUTHSERVER"].key_prepublish_seconds,
    )


@bp.post("/keys/rotate")
@require_permission("keys:write")
def rotate_keys() -> ResponseReturnValue:
    """Publish new signing keys; they sign after the pre-publication time."""
    form = RotateKeysForm()
    if not form.validate_on_submit():
        abort(400)
    kids = services.rotate_signing_keys(form.alg.data or None, actor=actor())
    flash(f"New signing keys, published now and signing later: {', '.join(kids)}.")
    return redirect(url_for("admin.keys"))
