"""Routes of the OAuth 2.0 endpoints: parse, hand to Authlib or the pipeline, answer."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import AccessDeniedError, OAuth2Error
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from ..core import uow
from ..extensions import csrf
from ..orgs.views import render_organization_picker
from ..sessions.services import current_session, current_user
from .authorize import (
    GRANTED_PARAM,
    check_no_repeated_parameters,
    continuation_params,
    run_pipeline,
)
from .consent import REQUIRED_SCOPES, apply_consent, describe_scopes
from .errors import error_page, redirect_error
from .interaction import (
    AuthorizationContext,
    Decision,
    Deny,
    Endpoint,
    NeedAccountSelection,
    NeedConsent,
    NeedOrganization,
)
from .reauth import REAUTH_PARAM, SELECTED_PARAM, mint_marker, mint_selection
from .response_modes import response_mode

log = logging.getLogger(__name__)
bp = Blueprint("oauth", __name__)


def authorization_server() -> Any:
    return current_app.extensions["authserver.oauth"]


@bp.route("/authorize", methods=["GET", "POST"])
@csrf.exempt
def authorize() -> BaseResponse | str:
    """RFC 6749 section 3.1 and OpenID Connect Core section 3.1.2.1 (GET and POST)."""
    return _run(Endpoint.AUTHORIZE)


@bp.post("/authorize/decision")
def authorize_decision() -> BaseResponse | str:
    """The consent form's answer: Allow issues a code for the ticked scopes, Deny access_denied."""
    return _run(Endpoint.CONSENT_ANSWER, answer=request.form.get("decision"))


# The account choice's buttons (`prompt=select_account`).
CONTINUE, ANOTHER_ACCOUNT = "continue", "another"


@bp.post("/authorize/account")
def select_account() -> BaseResponse:
    """OpenID Connect Core section 3.1.2.1 `prompt=select_account`: the person's choice.

    "Continue as" goes back to the request with a marker saying this session was chosen
    (oauth/reauth.py); "Use another account" opens the sign-in page, and the new sign-in
    replaces this browser's session. Either way /authorize checks the request again.
    """
    params = continuation_params(request.form)
    choice, session = request.form.get("choice"), current_session()
    if choice == CONTINUE and session is not None:
        params.append((SELECTED_PARAM, mint_selection(params, session.id)))
        return redirect(url_for("oauth.authorize") + "?" + urlencode(params))
    if choice not in (CONTINUE, ANOTHER_ACCOUNT):
        abort(400)
    # Signed out meanwhile (another tab), or another account wanted: sign in.
    return redirect(sign_in_url(request.form, reauth=True, login_hint=False))


def _run(endpoint: Endpoint, answer: str | None = None) -> BaseResponse | str:
    server = authorization_server()
    user, session = current_user(), current_session()
    try:
        check_no_repeated_parameters(request.values)
        grant = server.get_consent_grant(end_user=user)
        ctx = AuthorizationContext(
            request.values,
            grant.request.client,
            str(grant.redirect_uri),
            user,
            session,
            response_mode=response_mode(request.values),
        )
        decision = run_pipeline(ctx, endpoint)
        if decision is None and answer is not None:
            if answer != "allow":
                return render_decision(ctx, ctx.deny(AccessDeniedError))
            decision = apply_consent(ctx, request.form.getlist(GRANTED_PARAM))
        if decision is not None:
            return render_decision(ctx, decision)
        grant.context = ctx
        return server.create_authorization_response(grant=grant, grant_user=user)
    except OAuth2Error as error:
        return redirect_error(error, response_mode(request.values))
    except ValueError:
        # Authlib refuses to build an error description from characters RFC 6749 forbids.
        log.info("authorization request with unprintable parameters refused")
        return error_page("invalid_request", "The request is malformed.")


def render_decision(ctx: AuthorizationContext, decision: Decision) -> BaseResponse | str:
    """The interaction a step asks for: a page, a sign-in redirect, or the error response."""
    if isinstance(decision, Deny):
        return redirect_error(decision.error, decision.response_mode)
    if isinstance(decision, NeedAccountSelection):
        return render_account_choice(ctx)
    if isinstance(decision, NeedConsent):
        return render_consent(ctx, decision)
    if isinstance(decision, NeedOrganization):
        return render_organization_picker(ctx, decision.choices)
    # NeedSignIn, NeedStepUp: the sign-in page asks for what the session lacks.
    return redirect(sign_in_url(ctx.params, reauth=ctx.user is not None))


def render_account_choice(ctx: AuthorizationContext) -> str:
    """`prompt=select_account`: continue as the signed-in person, or use another account."""
    return render_template(
        "oauth/select_account.html",
        client_name=ctx.client.client_name,
        user=ctx.user,
        hidden_fields=continuation_params(ctx.params),
        choices={"continue": CONTINUE, "another": ANOTHER_ACCOUNT},
    )


def render_consent(ctx: AuthorizationContext, decision: NeedConsent) -> str:
    """The consent page: exactly the grantable scopes, each to tick, and the request's own
    parameters to re-post."""
    organization = decision.organization
    names = {organization.slug: organization.name} if organization is not None else {}
    return render_template(
        "oauth/consent.html",
        client_name=ctx.client.client_name,
        scopes=describe_scopes(decision.scopes, names),
        required=REQUIRED_SCOPES,
        user=ctx.user,
        hidden_fields=continuation_params(ctx.params),
    )


def sign_in_url(request_params: MultiDict[str, str], reauth: bool, login_hint: bool = True) -> str:
    """The sign-in page, coming back to this request with a marker (oauth/reauth.py) that
    says the sign-in it asked for has happened. `reauth`: shown to a signed-in person too."""
    params = continuation_params(request_params)
    params.append((REAUTH_PARAM, mint_marker(params)))
    continuation = url_for("oauth.authorize") + "?" + urlencode(params)
    args: dict[str, str] = {"next": continuation}
    if reauth:
        args["reauth"] = "1"
    if login_hint and (hint := request_params.get("login_hint")):
        args["login_hint"] = hint
    return url_for("accounts.login", **args)  # type: ignore[arg-type]


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
    """RFC 7662 section 2; it only reads."""
    uow.read_only()
    return authorization_server().create_endpoint_response("introspection")
