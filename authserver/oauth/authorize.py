"""The authorization endpoint, as a pipeline of small named checks.

RFC 6749 section 4.1.1 and OpenID Connect Core section 3.1.2. Authlib
validates the client, redirect_uri, response_type, scope and PKCE
(`validate_client`); the steps below add what it leaves out. Read
`PIPELINE` top to bottom to see the whole flow.
"""

from __future__ import annotations

from collections.abc import Iterable
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
from flask import redirect, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from ..accounts.models import User
from ..accounts.totp import is_enabled as has_second_factor
from ..oidc.acr import UnmeetableAcr, UnmetAuthenticationRequirementsError, required_acr, satisfies
from ..oidc.claims import parse_claims_request
from ..oidc.id_token_hint import IdTokenHint, InvalidIdTokenHint, verify_id_token_hint
from ..orgs.services import ORG_SCOPE_PREFIX, fitting_organizations
from ..sessions.models import LoginSession
from ..sessions.services import auth_age_seconds
from .consent import grantable_scope, granted_scope, has_consent, remember_consent
from .reauth import REAUTH_PARAM, is_fresh, mint_marker
from .services import check_resources, client_scope

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
# Section 3.1.2.1; discovery advertises exactly these (`prompt_values_supported`).
PROMPT_VALUES = ("none", "login", "consent", "select_account")
# Prompts that show the sign-in page again. A browser holds one session here, so selecting
# an account (`select_account`) is signing in as the account wanted.
SIGN_IN_PROMPTS = {"login", "select_account"}
# The consent form's checkboxes: the scopes the person allows.
GRANTED_PARAM = "granted"
INTERNAL_PARAMS = {REAUTH_PARAM, "csrf_token", "decision", GRANTED_PARAM}
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
    # The lowest `acr` the request accepts (oidc/acr.py), None for any.
    acr: str | None = None
    hint: IdTokenHint | None = None
    # The request's scope with the organization picked (`org:<slug>`); None: as sent.
    requested_scope: str | None = None
    # What the consent page offers (oauth/consent.py), and what is granted of it.
    grantable: str = ""
    scope: str = ""
    organization: Any = None

    @property
    def client(self) -> Any:
        return self.grant.request.client

    @property
    def redirect_uri(self) -> str:
        return str(self.grant.redirect_uri)

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
    if not prompts <= set(PROMPT_VALUES):
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


def check_acr_values(req: AuthorizationRequest) -> None:
    """OpenID Connect Core sections 3.1.2.1 and 5.5.1.1: the sign-in level asked for.

    An essential `acr` no sign-in here can give fails at once, before anyone signs in.
    """
    try:
        req.acr = required_acr(req.params.get("acr_values"), req.claims)
    except UnmeetableAcr:
        raise req.error(
            UnmetAuthenticationRequirementsError, "The requested acr cannot be met."
        ) from None


def check_id_token_hint(req: AuthorizationRequest) -> None:
    """OpenID Connect Core section 3.1.2.1: `id_token_hint` is an ID Token we issued to
    this client (expired is fine), else invalid_request. Whom it names is checked by
    `check_authentication` and `check_hinted_person`.
    """
    value = req.params.get("id_token_hint")
    if not value:
        return
    try:
        hint = verify_id_token_hint(value)
    except InvalidIdTokenHint:
        raise req.error(
            InvalidRequestError, "The id_token_hint is not an ID Token issued by this server."
        ) from None
    if req.client.client_id not in hint.audiences:
        raise req.error(InvalidRequestError, "The id_token_hint was issued to another client.")
    req.hint = hint


def check_authentication(req: AuthorizationRequest) -> None:
    """Sign the person in when nobody is, or again when `prompt=login` (or `select_account`),
    `max_age` or an `id_token_hint` naming someone else asks for it.

    Section 3.1.2.1: with `prompt=none` that is `login_required` instead. Coming back from
    the sign-in we asked for (`_signed_in_since_redirect`) satisfies all of them.
    """
    if req.user is not None and req.session is not None:
        if _signed_in_since_redirect(req):
            return
        too_old = req.max_age is not None and auth_age_seconds(req.session) > req.max_age
        if not (req.prompts & SIGN_IN_PROMPTS or too_old or _hint_names_someone_else(req)):
            return
    if "none" in req.prompts:
        raise req.error(LoginRequiredError)
    raise Interrupt(redirect(_sign_in_url(req)))


def check_hinted_person(req: AuthorizationRequest) -> None:
    """Section 3.1.2.1: a code only for the person the `id_token_hint` names.

    The sign-in page was offered (`check_authentication`); whoever signed in there is
    not that person, so the answer is login_required, never a code for someone else.
    """
    if _hint_names_someone_else(req):
        raise req.error(LoginRequiredError, "The signed-in person is not the one hinted at.")


def check_acr(req: AuthorizationRequest) -> None:
    """Section 5.5.1.1: a sign-in below the requested `acr` is a failed authentication.

    Step up (the sign-in page again, which asks for the second factor) when the person
    has one; with `prompt=none` that is interaction_required. Without a second factor,
    or when the sign-in we asked for still fell short: unmet_authentication_requirements.
    """
    if req.acr is None or req.user is None or req.session is None:
        return
    if satisfies(req.session.acr, req.acr):
        return
    if not has_second_factor(req.user) or _signed_in_since_redirect(req):
        raise req.error(UnmetAuthenticationRequirementsError, "The requested acr cannot be met.")
    if "none" in req.prompts:
        raise req.error(InteractionRequiredError, "Signing in with a second factor is needed.")
    raise Interrupt(redirect(_sign_in_url(req)))


def check_organization(req: AuthorizationRequest) -> None:
    """Pick the organization the tokens speak for; it becomes the request's `org:<slug>` scope.

    Asked for with `organization=<slug>`, `organization=select` (or empty: the person
    picks) or `org:<slug>` scopes. With the parameter, the client must be registered for
    `org:*` or that `org:<slug>`, else invalid_request (the client asked for what it may
    not have), and the person must be a member, else access_denied. With several that
    fit the person chooses on a hosted page, with one it is used. The pick replaces every
    other `org:` scope of the request, so consent names it, and the grant, its tokens and
    remembered consent carry it; a grant without it has no organization.
    """
    if req.user is None:
        return
    asked = req.params.get("organization")
    items = req.params.get("scope", "").split()
    named = [item[len(ORG_SCOPE_PREFIX) :] for item in items if item.startswith(ORG_SCOPE_PREFIX)]
    if asked is None and not named:
        return
    candidates: list[str] | None = named
    if asked and asked != SELECT_ORGANIZATION:
        if not _registered_for_organization(req.client, asked):
            raise req.error(InvalidRequestError, "The client may not ask for this organization.")
        candidates = [asked]
    elif asked is not None:
        if not any(item.startswith(ORG_SCOPE_PREFIX) for item in req.client.scopes):
            raise req.error(InvalidRequestError, "The client may not ask for organizations.")
        candidates = None
    fits = [
        organization
        for organization in fitting_organizations(req.user, candidates)
        if _registered_for_organization(req.client, organization.slug)
    ]
    if not fits:
        if asked is None:
            return  # only `org:` scopes: the grantable set drops them for a non-member
        raise req.error(AccessDeniedError, "You are not a member of the organization.")
    if len(fits) > 1:
        if "none" in req.prompts:
            raise req.error(InteractionRequiredError)
        from ..orgs.views import render_organization_picker

        raise Interrupt(render_organization_picker(req, fits))
    req.organization = fits[0]
    kept = [item for item in items if not item.startswith(ORG_SCOPE_PREFIX)]
    req.requested_scope = " ".join([*kept, ORG_SCOPE_PREFIX + fits[0].slug])


def _registered_for_organization(client: Any, slug: str) -> bool:
    """The client is registered for `org:<slug>` (or `org:*`)."""
    return bool(client_scope(client, ORG_SCOPE_PREFIX + slug))


def check_scope_limits(req: AuthorizationRequest) -> None:
    """RFC 6749 section 3.3: what may be granted, the client's and the person's limits applied.

    `grantable_scope` decides it; the consent page offers exactly that set. The server
    may issue fewer scopes than requested and then says which in the token response's
    `scope` (always sent).
    """
    if req.user is None:
        return
    requested = req.requested_scope
    if requested is None:
        requested = req.params.get("scope")
    req.grantable = req.scope = grantable_scope(req.client, req.user, requested)


def check_consent(req: AuthorizationRequest) -> None:
    """Ask for consent unless the client is first-party or the person allowed it all before."""
    client = req.client
    if client.skip_consent and "consent" not in req.prompts:
        return
    assert req.user is not None
    if "consent" not in req.prompts and has_consent(req.user.id, client.client_id, req.grantable):
        return
    if "none" in req.prompts:
        raise req.error(ConsentRequiredError)
    from .views import render_consent

    raise Interrupt(render_consent(req))


def apply_consent(req: AuthorizationRequest, chosen: Iterable[str]) -> None:
    """The consent page's Allow: grant what the person left ticked of what it offered.

    Remembered as their latest answer (oauth/consent.py). An organization whose
    `org:<slug>` was unticked is not the grant's; allowing nothing at all is a denial.
    """
    assert req.user is not None
    req.scope = granted_scope(req.grantable, chosen)
    if req.grantable and not req.scope:
        raise req.error(AccessDeniedError, "Nothing was allowed.")
    organization = req.organization
    if organization is not None and ORG_SCOPE_PREFIX + organization.slug not in req.scope.split():
        req.organization = None
    remember_consent(req.user.id, req.client.client_id, req.scope, offered=req.grantable)


# The whole flow, after Authlib has validated the client, redirect_uri, scope and PKCE.
PIPELINE = (
    check_no_nul_characters,
    check_request_object,
    check_response_mode,
    check_prompt,
    check_max_age,
    check_claims_parameter,
    check_acr_values,
    check_resource,
    check_id_token_hint,
    check_authentication,
    check_hinted_person,
    check_acr,
    check_organization,
    check_scope_limits,
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
    check_acr_values,
    check_resource,
    check_id_token_hint,
    check_hinted_person,
    check_acr,
    check_organization,
    check_scope_limits,
)


def continuation_params(params: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The request's own parameters, without ours."""
    return [(k, v) for k, v in params.items(multi=True) if k not in INTERNAL_PARAMS]


def _hint_names_someone_else(req: AuthorizationRequest) -> bool:
    return req.hint is not None and req.user is not None and req.hint.sub != req.user.sub


def _signed_in_since_redirect(req: AuthorizationRequest) -> bool:
    """True when this request came back from a sign-in we asked for, and it happened."""
    if req.session is None:
        return False
    own = continuation_params(req.params)
    return is_fresh(req.params.get(REAUTH_PARAM), own, req.session.auth_time)


def _sign_in_url(req: AuthorizationRequest) -> str:
    params = continuation_params(req.params)
    params.append((REAUTH_PARAM, mint_marker(params)))
    continuation = url_for("oauth.authorize") + "?" + urlencode(params)
    args: dict[str, str] = {"next": continuation}
    if req.user is not None:
        args["reauth"] = "1"
    if hint := req.params.get("login_hint"):
        args["login_hint"] = hint
    return url_for("accounts.login", **args)  # type: ignore[arg-type]
