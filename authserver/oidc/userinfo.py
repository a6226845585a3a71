"""OpenID Connect Core section 5.3: the UserInfo endpoint, with RFC 6750 bearer errors."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import lazyload

from ..accounts.models import User
from ..clients.cache import load_client
from ..core import uow
from ..extensions import csrf, db
from ..oauth.models import Grant
from ..oauth.tokens import verify_access_token
from .claims import release_claims
from .subjects import is_subject_of

bp = Blueprint("oidc", __name__)
REALM = 'realm="userinfo"'
# One query for both, built once; roles load only if the `roles` scope releases them.
GRANT_AND_USER = (
    select(Grant, User)
    .join(User, User.id == Grant.user_id)
    .where(Grant.id == bindparam("grant_id"))
    .options(lazyload(User.roles))
)


def bearer_error(status: int, error: str | None = None, description: str | None = None) -> Response:
    """RFC 6750 section 3: the WWW-Authenticate challenge; no error code when none was sent."""
    challenge = f"Bearer {REALM}"
    body: dict[str, str] = {}
    if error:
        challenge += f', error="{error}"'
        body["error"] = error
        if description:
            challenge += f', error_description="{description}"'
            body["error_description"] = description
    response = jsonify(body) if body else Response(status=status)
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    response.headers["Cache-Control"] = "no-store"
    return response


def presented_token() -> tuple[str | None, Response | None]:
    """RFC 6750 sections 2.1 and 2.2: the header or a form body, never both, never twice."""
    header = request.headers.get("Authorization", "")
    in_body = request.form.getlist("access_token") if request.method == "POST" else []
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip() or in_body:
            return None, bearer_error(400, "invalid_request", "Send one bearer token.")
        return value.strip(), None
    if len(in_body) == 1 and request.mimetype == "application/x-www-form-urlencoded":
        return in_body[0], None
    if in_body:
        return None, bearer_error(400, "invalid_request", "Send one bearer token.")
    return None, bearer_error(401)


@bp.route("/userinfo", methods=["GET", "POST"])
@csrf.exempt
def userinfo() -> Response:
    """Claims about the person the access token was issued for, by its scope."""
    value, problem = presented_token()
    if problem is not None:
        return problem
    assert value is not None
    uow.read_only()
    token = verify_access_token(value)
    if token is None:
        return bearer_error(401, "invalid_token", "The access token is not valid.")
    if "openid" not in token.scopes or token.grant_id is None:
        return bearer_error(403, "insufficient_scope", "The openid scope is required.")
    found = db.session.execute(GRANT_AND_USER, {"grant_id": token.grant_id}).one_or_none()
    if found is None:
        return bearer_error(401, "invalid_token", "The access token is not valid.")
    grant, user = found
    # Section 8: the token's `sub` is the one its client knows the person by.
    client = load_client(grant.client_id)
    if not user.is_active or client is None or not is_subject_of(token.claims["sub"], user, client):
        return bearer_error(401, "invalid_token", "The access token is not valid.")
    scope = str(token.claims.get("scope", ""))
    claims = release_claims(
        user, scope, grant.claims, "userinfo", grant.organization_id, subject=token.claims["sub"]
    )
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response
