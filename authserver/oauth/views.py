"""Routes of the OAuth 2.0 endpoints: parse, hand to Authlib or the pipeline, answer."""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import Blueprint, current_app, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from ..extensions import csrf
from ..sessions.services import current_session, current_user
from .authorize import (
    DECISION_PIPELINE,
    GRANTED_PARAM,
    PIPELINE,
    AuthorizationRequest,
    Interrupt,
    apply_consent,
    check_authentication,
    check_no_repeated_parameters,
    continuation_params,
)
from .consent import REQUIRED_SCOPES, describe_scopes
from .errors import error_page, redirect_error

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)


def authorization_server() -> Any:
    return current_app.extensions["authserver.oauth"]


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize() -> BaseResponse | str:
    """RFC 6749 section 3.1 and OpenID Connect Core section 3.1.2.1 (GET and POST)."""
    return _run(PIPELINE)


@bp.post("/authorize/decision")
def authorize_decision() -> BaseResponse | str:
    """The consent form's answer: Allow issues a code for the ticked scopes, Deny access_denied."""
    return _run(DECISION_PIPELINE, decision=request.form.get("decision"))


def _run(pipeline: tuple[Any, ...], decision: str | None = None) -> BaseResponse | str:
    server = authorization_server()
    user, session = current_user(), current_session()
    try:
        check_no_repeated_parameters(request.values)
        grant = server.get_consent_grant(end_user=user)
        req = AuthorizationRequest(request.values, grant, user, session)
        for step in pipeline:
            step(req)
        if decision is not None:
            if user is None or session is None:
                # Signed out in another tab: start over from the authorization request.
                check_authentication(req)
            if decision != "allow":
                return server.create_authorization_response(grant=grant, grant_user=None)
            apply_consent(req, request.form.getlist(GRANTED_PARAM))
        grant.request.login_session = session
        grant.request.resources = req.resources
        grant.request.claims_request = req.claims
        # Authlib validates the request again below, resetting `scope` to the client's filter.
        grant.request.granted_scope = req.scope
        grant.request.organization_id = req.organization.id if req.organization else None
        return server.create_authorization_response(grant=grant, grant_user=user)
    except Interrupt as interrupt:
        return interrupt.response
    except OAuth2Error as error:
        return redirect_error(error)
    except ValueError:
        # Authlib refuses to build an error description from characters RFC 6749 forbids.
        log.info("authorization request with unprintable parameters refused")
        return error_page("invalid_request", "The request is malformed.")


def render_consent(req: AuthorizationRequest) -> str:
    """The consent page: exactly the grantable scopes, each to tick, and the request's own
    parameters to re-post."""
    organization = req.organization
    names = {organization.slug: organization.name} if organization is not None else {}
    return render_template(
        "oauth/consent.html",
        client_name=req.client.client_name,
        scopes=describe_scopes(req.grantable, names),
        required=REQUIRED_SCOPES,
        user=req.user,
        hidden_fields=continuation_params(req.params),
    )


@bp.post("/oauth2/token")
@csrf.exempt
def token() -> BaseResponse:
    """RFC 6749 section 3.2."""
    return authorization_server().create_token_response()


@bp.post("/oauth2/revoke")
@csrf.exempt
def revoke() -> BaseResponse:
    """RFC 7009 section 2."""
    return authorization_server().create_endpoint_response("revocation")


@bp.post("/oauth2/introspect")
@csrf.exempt
def introspect() -> BaseResponse:
    """RFC 7662 section 2."""
    return authorization_server().create_endpoint_response("introspection")
