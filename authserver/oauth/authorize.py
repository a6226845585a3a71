"""The authorization endpoint, as a pipeline of small named checks.

RFC 6749 section 4.1.1 and OpenID Connect Core section 3.1.2. Authlib
validates the client, redirect_uri, response_type, scope and PKCE
(`validate_client`); the steps below add what it leaves out. Read
`PIPELINE` top to bottom to see the whole flow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import current_app, redirect, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from ..accounts.models import User
from ..oidc.claims import parse_claims_request
from ..sessions.models import LoginSession
from ..sessions.services import auth_age_seconds
from .consent import has_consent
from .services import check_resources, client_scope, limit_user_scope

# RFC 6749 section 3.1: parameters sent more than once are refused. `resource` may repeat
# (RFC 8707 section 2).
SINGLE_VALUED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "claims",
    "id_token_hint",
    "response_mode",
    "request",
    "request_uri",
    "acr_values",
    "ui_locales",
    "claims_locales",
    "display",
    "organization",
)
PROMPT_VALUES = {"none", "login", "consent", "select_account"}
# Carried through the sign-in page: "a sign-in after this moment satisfies prompt=login/max_age".
REAUTH_PARAM = "authserver_reauth"
REAUTH_MAX_AGE = 600
INTERNAL_PARAMS = {REAUTH_PARAM, "csrf_token", "decision"}
# `organization=select` (or empty) asks the person to pick one of their organizations.
SELECT_ORGANIZATION = "select"


@dataclass
class AuthorizationRequest:
    """What the pipeline learns about one request as it goes."""

    params: MultiDict[str, str]
    grant: Any
    user: User | None
    session: LoginSession | None
    prompts: set[str] = field(default_factory=set)
    max_age: int | None = None
    resources: list[str] = field(default_factory=list)
    claims: dict[str, Any] | None = None
    # `org:<slug>` scopes the client may ask for, before the person's limits; the pick.
    requested_organizations: list[str] = field(default_factory=list)
    organization: Any = None

    @property
    def client(self) -> Any:
        return self.grant.request.client

    @property
    def redirect_uri(self) -> str:
        return str(self.grant.redirect_uri)

    @property
    def scope(self) -> str:
        return str(self.grant.request.scope or "")

    def error(self, error_cls: type[OAuth2Error], description: str | None = None) -> OAuth2Error:
        """An error that is sent back to the client's (already verified) redirect_uri."""
        return error_cls(
            description=description,
            redirect_uri=self.redirect_uri,
            state=self.params.get("state"),
        )


class Interrupt(Exception):
    """A step answers the browser itself: a sign-in redirect or the consent page."""

    def __init__(self, response: Response | str) -> None:
        super().__init__()
        self.response = response


def check_no_repeated_parameters(params: MultiDict[str, str]) -> None:
    """RFC 6749 section 3.1: request parameters MUST NOT be included more than once."""
    for name in SINGLE_VALUED:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"Multiple '{name}' parameters.")


def check_no_nul_characters(req: AuthorizationRequest) -> None:
    """No legitimate parameter holds NUL, and PostgreSQL cannot store one (the nonce is stored)."""
    if any("\x00" in value for _, value in req.params.items(multi=True)):
        raise req.error(InvalidRequestError, "Parameters must not contain NUL characters.")


def check_request_object(req: AuthorizationRequest) -> None:
    """OpenID Connect Core section 6: request objects are not supported, and say so."""
    if "request" in req.params:
        raise req.error(RequestNotSupportedError)
    if "request_uri" in req.params:
        raise req.error(RequestURINotSupportedError)


def check_response_mode(req: AuthorizationRequest) -> None:
    """OAuth 2.0 Multiple Response Types: only `query` for the code flow."""
    mode = req.params.get("response_mode")
    if mode and mode != "query":
        raise req.error(InvalidRequestError, "Only response_mode=query is supported.")


def check_prompt(req: AuthorizationRequest) -> None:
    """OpenID Connect Core section 3.1.2.1: `none` must stand alone."""
    prompts = set(req.params.get("prompt", "").split())
    if not prompts <= PROMPT_VALUES:
        raise req.error(InvalidRequestError, "Unsupported 'prompt' value.")
    if "none" in prompts and len(prompts) > 1:
        raise req.error(InvalidRequestError, "prompt=none cannot be combined with other values.")
    req.prompts = prompts


def check_max_age(req: AuthorizationRequest) -> None:
    """OpenID Connect Core section 3.1.2.1: `max_age` is a non-negative number of seconds."""
    raw = req.params.get("max_age")
    if raw is None or raw == "":
        return
    if not raw.isdigit() or len(raw) > 10:
        raise req.error(InvalidRequestError, "Invalid 'max_age'.")
    req.max_age = int(raw)


def check_claims_parameter(req: AuthorizationRequest) -> None:
    """OpenID Connect Core section 5.5: `claims` is a JSON object."""
    try:
        req.claims = parse_claims_request(req.params.get("claims"))
    except (ValueError, RecursionError):
        raise req.error(InvalidRequestError, "Invalid 'claims' parameter.") from None


def check_resource(req: AuthorizationRequest) -> None:
    """RFC 8707 section 2: each `resource` must be registered for the client."""
    try:
        req.resources = check_resources(req.client, req.params.getlist("resource"))
    except OAuth2Error as error:
        error.redirect_uri = req.redirect_uri
        error.state = req.params.get("state")
        raise


def check_authentication(req: AuthorizationRequest) -> None:
    """Sign the person in when nobody is, or when `prompt=login` or `max_age` asks again."""
    if req.user is not None and req.session is not None:
        fresh = _signed_in_since_redirect(req)
        too_old = req.max_age is not None and auth_age_seconds(req.session) > req.max_age
        if fresh or ("login" not in req.prompts and not too_old):
            return
    if "none" in req.prompts:
        raise req.error(LoginRequiredError)
    raise Interrupt(redirect(_sign_in_url(req)))


def check_scope_limits(req: AuthorizationRequest) -> None:
    """RFC 6749 section 3.3: grant only scopes the client and this person may have.

    The server may issue fewer scopes than requested and then says which in the token
    response's `scope` (always sent). Authlib has already applied the client's list.
    """
    if req.user is None:
        return
    from ..orgs.services import ORG_SCOPE_PREFIX

    allowed = client_scope(req.client, req.params.get("scope"))
    req.requested_organizations = [
        item[len(ORG_SCOPE_PREFIX) :]
        for item in allowed.split()
        if item.startswith(ORG_SCOPE_PREFIX)
    ]
    req.grant.request.scope = limit_user_scope(req.user, allowed)


def check_organization(req: AuthorizationRequest) -> None:
    """Pick the organization the tokens speak for: `organization=<slug>|select` or `org:` scopes.

    A named organization must be one of the person's (else access_denied); with several
    that fit the person chooses on a hosted page, with exactly one it is used.
    """
    if req.user is None:
        return
    from ..orgs import services as orgs

    asked = req.params.get("organization")
    if asked is None and not req.requested_organizations:
        return
    if asked and asked != SELECT_ORGANIZATION:
        fits = orgs.fitting_organizations(req.user, [asked])
    else:
        fits = orgs.fitting_organizations(req.user, req.requested_organizations or None)
    if not fits:
        if asked is None:
            return  # only `org:` scopes, already dropped for a non-member
        raise req.error(AccessDeniedError, "You are not a member of the organization.")
    if len(fits) > 1:
        if "none" in req.prompts:
            raise req.error(InteractionRequiredError)
        from ..orgs.views import render_organization_picker

        raise Interrupt(render_organization_picker(req, fits))
    req.organization = fits[0]
    _narrow_organization_scopes(req, fits[0].slug)


def _narrow_organization_scopes(req: AuthorizationRequest, slug: str) -> None:
    """Tokens speak for one organization: other `org:` scopes go."""
    from ..orgs.services import ORG_SCOPE_PREFIX

    kept = [
        item
        for item in req.scope.split()
        if not item.startswith(ORG_SCOPE_PREFIX) or item == ORG_SCOPE_PREFIX + slug
    ]
    req.grant.request.scope = " ".join(kept)


def check_consent(req: AuthorizationRequest) -> None:
    """Ask for consent unless the client is first-party or these scopes were allowed before."""
    client = req.client
    if client.skip_consent and "consent" not in req.prompts:
        return
    assert req.user is not None
    if "consent" not in req.prompts and has_consent(req.user.id, client.client_id, req.scope):
        return
    if "none" in req.prompts:
        raise req.error(ConsentRequiredError)
    from .views import render_consent

    raise Interrupt(render_consent(req))


# The whole flow, after Authlib has validated the client, redirect_uri, scope and PKCE.
PIPELINE = (
    check_no_nul_characters,
    check_request_object,
    check_response_mode,
    check_prompt,
    check_max_age,
    check_claims_parameter,
    check_resource,
    check_authentication,
    check_scope_limits,
    check_organization,
    check_consent,
)

# The consent decision re-validates the request but does not prompt again.
DECISION_PIPELINE = (
    check_no_nul_characters,
    check_request_object,
    check_response_mode,
    check_prompt,
    check_max_age,
    check_claims_parameter,
    check_resource,
    check_scope_limits,
    check_organization,
)


def continuation_params(params: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The request's own parameters, without ours."""
    return [(k, v) for k, v in params.items(multi=True) if k not in INTERNAL_PARAMS]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="authserver.reauth")


def _signed_in_since_redirect(req: AuthorizationRequest) -> bool:
    """True when this request came back from a sign-in we asked for, and it happened."""
    marker = req.params.get(REAUTH_PARAM)
    if not marker or req.session is None:
        return False
    try:
        asked_at = int(_serializer().loads(marker, max_age=REAUTH_MAX_AGE))
    except (BadSignature, ValueError, TypeError):
        return False
    return req.session.auth_time.timestamp() >= asked_at


def _sign_in_url(req: AuthorizationRequest) -> str:
    params = continuation_params(req.params)
    params.append((REAUTH_PARAM, _serializer().dumps(int(time.time()))))
    continuation = url_for("oauth.authorize") + "?" + urlencode(params)
    args: dict[str, str] = {"next": continuation}
    if req.user is not None:
        args["reauth"] = "1"
    if hint := req.params.get("login_hint"):
        args["login_hint"] = hint
    return url_for("accounts.login", **args)  # type: ignore[arg-type]
