"""The authorization endpoint, as a pipeline of small named checks.

RFC 6749 section 4.1.1 and OpenID Connect Core section 3.1.2. Authlib
validates the client, redirect_uri, response_type, scope and PKCE
(`validate_client`); the steps below add what it leaves out. Read
`PIPELINE` top to bottom to see the whole flow. A step reads and fills the request's
`AuthorizationContext` and returns None to let it through, or a decision
(`oauth/interaction.py`: sign in, pick an organization, consent, an error) that the
views render; no step renders or redirects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidRequestError, OAuth2Error
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    InteractionRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from werkzeug.datastructures import MultiDict

from ..accounts.totp import is_enabled as has_second_factor
from ..core import capabilities
from ..oidc.acr import UnmeetableAcr, UnmetAuthenticationRequirementsError, required_acr, satisfies
from ..oidc.claims import parse_claims_request
from ..oidc.id_token_hint import InvalidIdTokenHint, verify_id_token_hint
from ..oidc.subjects import is_subject_of
from ..orgs.services import ORG_SCOPE_PREFIX, fitting_organizations
from ..sessions.services import auth_age_seconds
from .consent import grantable_scope, has_consent
from .interaction import (
    AuthorizationContext,
    Decision,
    Deny,
    Endpoint,
    NeedAccountSelection,
    NeedConsent,
    NeedOrganization,
    NeedSignIn,
    NeedStepUp,
)
from .reauth import REAUTH_PARAM, SELECTED_PARAM, is_fresh, is_selected
from .services import check_resources, client_scope

# RFC 6749 section 3.1: the parameters that must not repeat (`resource` may, RFC 8707).
SINGLE_VALUED = capabilities.endpoint("oauth.authorize").single_valued
# The consent form's checkboxes: the scopes the person allows.
GRANTED_PARAM = "granted"
INTERNAL_PARAMS = {REAUTH_PARAM, SELECTED_PARAM, "csrf_token", "decision", "choice", GRANTED_PARAM}
# `organization=select` (or empty) asks the person to pick one of their organizations.
SELECT_ORGANIZATION = "select"


def check_no_repeated_parameters(params: MultiDict[str, str]) -> None:
    """RFC 6749 section 3.1: request parameters MUST NOT be included more than once."""
    for name in SINGLE_VALUED:
        if len(params.getlist(name)) > 1:
            raise InvalidRequestError(f"Multiple '{name}' parameters.")


def check_no_nul_characters(ctx: AuthorizationContext) -> Decision | None:
    """No legitimate parameter holds NUL, and PostgreSQL cannot store one (the nonce is stored)."""
    if any("\x00" in value for _, value in ctx.params.items(multi=True)):
        return ctx.deny(InvalidRequestError, "Parameters must not contain NUL characters.")
    return None


def check_request_object(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core section 6: request objects are not supported, and say so."""
    if "request" in ctx.params:
        return ctx.deny(RequestNotSupportedError)
    if "request_uri" in ctx.params:
        return ctx.deny(RequestURINotSupportedError)
    return None


def check_response_mode(ctx: AuthorizationContext) -> Decision | None:
    """OAuth 2.0 Multiple Response Type Encoding Practices section 2.1 and OAuth 2.0 Form
    Post Response Mode: `query` (the default) or `form_post`; any other mode, `fragment`
    included (the implicit flow's), is refused, and that error goes by the default mode."""
    mode = ctx.params.get("response_mode")
    if mode and mode not in capabilities.RESPONSE_MODES:
        supported = ", ".join(capabilities.RESPONSE_MODES)
        return ctx.deny(InvalidRequestError, f"Unsupported 'response_mode'; use {supported}.")
    return None


def check_prompt(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core section 3.1.2.1: `none` must stand alone."""
    prompts = set(ctx.params.get("prompt", "").split())
    if not prompts <= set(capabilities.PROMPT_VALUES):
        return ctx.deny(InvalidRequestError, "Unsupported 'prompt' value.")
    if "none" in prompts and len(prompts) > 1:
        return ctx.deny(InvalidRequestError, "prompt=none cannot be combined with other values.")
    ctx.prompts = prompts
    return None


def check_max_age(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core section 3.1.2.1: `max_age` is a non-negative number of seconds."""
    raw = ctx.params.get("max_age")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 10:
        return ctx.deny(InvalidRequestError, "Invalid 'max_age'.")
    ctx.max_age = int(raw)
    return None


def check_claims_parameter(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core section 5.5: `claims` is a JSON object."""
    try:
        ctx.claims = parse_claims_request(ctx.params.get("claims"))
    except (ValueError, RecursionError):
        return ctx.deny(InvalidRequestError, "Invalid 'claims' parameter.")
    return None


def check_resource(ctx: AuthorizationContext) -> Decision | None:
    """RFC 8707 section 2: each `resource` must be registered for the client."""
    try:
        ctx.resources = check_resources(ctx.client, ctx.params.getlist("resource"))
    except OAuth2Error as error:
        error.redirect_uri = ctx.redirect_uri
        error.state = ctx.params.get("state")
        return Deny(error, ctx.response_mode)
    return None


def check_acr_values(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core sections 3.1.2.1 and 5.5.1.1: the sign-in level asked for.

    An essential `acr` no sign-in here can give fails at once, before anyone signs in.
    """
    try:
        ctx.acr = required_acr(ctx.params.get("acr_values"), ctx.claims)
    except UnmeetableAcr:
        return ctx.deny(UnmetAuthenticationRequirementsError, "The requested acr cannot be met.")
    return None


def check_id_token_hint(ctx: AuthorizationContext) -> Decision | None:
    """OpenID Connect Core section 3.1.2.1: `id_token_hint` is an ID Token we issued to
    this client (expired is fine), else invalid_request. Whom it names is checked by
    `check_authentication` and `check_hinted_person`.
    """
    value = ctx.params.get("id_token_hint")
    if not value:
        return None
    try:
        hint = verify_id_token_hint(value)
    except InvalidIdTokenHint:
        return ctx.deny(
            InvalidRequestError, "The id_token_hint is not an ID Token issued by this server."
        )
    if ctx.client.client_id not in hint.audiences:
        return ctx.deny(InvalidRequestError, "The id_token_hint was issued to another client.")
    ctx.hint = hint
    return None


def check_authentication(ctx: AuthorizationContext) -> Decision | None:
    """Sign the person in when nobody is, or again when `prompt=login`, `max_age` or an
    `id_token_hint` naming someone else asks for it.

    Section 3.1.2.1: with `prompt=none` that is `login_required` instead. Coming back from
    the sign-in we asked for (`_signed_in_since_redirect`) satisfies all of them.
    """
    if ctx.user is not None and ctx.session is not None:
        if _signed_in_since_redirect(ctx):
            return None
        too_old = ctx.max_age is not None and auth_age_seconds(ctx.session) > ctx.max_age
        asks_login = capabilities.PROMPT_LOGIN in ctx.prompts
        if not (asks_login or too_old or _hint_names_someone_else(ctx)):
            return None
    if "none" in ctx.prompts:
        return ctx.deny(LoginRequiredError)
    return NeedSignIn()


def check_account_selection(ctx: AuthorizationContext) -> Decision | None:
    """Section 3.1.2.1 `prompt=select_account`: the person chooses the account to use.

    With someone signed in, a page offers to continue as them or to use another account
    (which is the sign-in page; the new sign-in replaces this browser's session). With
    nobody signed in `check_authentication` has shown the sign-in page, and signing in
    there is the choice. `prompt=none` cannot be combined with it (`check_prompt`), so
    `account_selection_required` is never the answer: one browser holds one session here.
    """
    if capabilities.PROMPT_SELECT_ACCOUNT not in ctx.prompts or ctx.session is None:
        return None
    if _signed_in_since_redirect(ctx):
        return None
    own = continuation_params(ctx.params)
    if is_selected(ctx.params.get(SELECTED_PARAM), own, ctx.session.id):
        return None
    return NeedAccountSelection()


def check_hinted_person(ctx: AuthorizationContext) -> Decision | None:
    """Section 3.1.2.1: a code only for the person the `id_token_hint` names.

    The sign-in page was offered (`check_authentication`); whoever signed in there is
    not that person, so the answer is login_required, never a code for someone else.
    """
    if _hint_names_someone_else(ctx):
        return ctx.deny(LoginRequiredError, "The signed-in person is not the one hinted at.")
    return None


def check_acr(ctx: AuthorizationContext) -> Decision | None:
    """Section 5.5.1.1: a sign-in below the requested `acr` is a failed authentication.

    Step up (the sign-in page again, which asks for the second factor) when the person
    has one; with `prompt=none` that is interaction_required. Without a second factor,
    or when the sign-in we asked for still fell short: unmet_authentication_requirements.
    """
    if ctx.acr is None or ctx.user is None or ctx.session is None:
        return None
    if satisfies(ctx.session.acr, ctx.acr):
        return None
    if not has_second_factor(ctx.user) or _signed_in_since_redirect(ctx):
        return ctx.deny(UnmetAuthenticationRequirementsError, "The requested acr cannot be met.")
    if "none" in ctx.prompts:
        return ctx.deny(InteractionRequiredError, "Signing in with a second factor is needed.")
    return NeedStepUp()


def check_organization(ctx: AuthorizationContext) -> Decision | None:
    """Pick the organization the tokens speak for; it becomes the request's `org:<slug>` scope.

    Asked for with `organization=<slug>`, `organization=select` (or empty: the person
    picks) or `org:<slug>` scopes. With the parameter, the client must be registered for
    `org:*` or that `org:<slug>`, else invalid_request (the client asked for what it may
    not have), and the person must be a member, else access_denied. With several that
    fit the person chooses on a hosted page, with one it is used. The pick replaces every
    other `org:` scope of the request, so consent names it, and the grant, its tokens and
    remembered consent carry it; a grant without it has no organization.
    """
    if ctx.user is None:
        return None
    asked = ctx.params.get("organization")
    items = ctx.params.get("scope", "").split()
    named = [item[len(ORG_SCOPE_PREFIX) :] for item in items if item.startswith(ORG_SCOPE_PREFIX)]
    if asked is None and not named:
        return None
    candidates: list[str] | None = named
    if asked and asked != SELECT_ORGANIZATION:
        if not _registered_for_organization(ctx.client, asked):
            return ctx.deny(InvalidRequestError, "The client may not ask for this organization.")
        candidates = [asked]
    elif asked is not None:
        if not any(item.startswith(ORG_SCOPE_PREFIX) for item in ctx.client.scopes):
            return ctx.deny(InvalidRequestError, "The client may not ask for organizations.")
        candidates = None
    fits = [
        organization
        for organization in fitting_organizations(ctx.user, candidates)
        if _registered_for_organization(ctx.client, organization.slug)
    ]
    if not fits:
        if asked is None:
            return None  # only `org:` scopes: the grantable set drops them for a non-member
        return ctx.deny(AccessDeniedError, "You are not a member of the organization.")
    if len(fits) > 1:
        if "none" in ctx.prompts:
            return ctx.deny(InteractionRequiredError)
        return NeedOrganization(fits)
    ctx.organization = fits[0]
    kept = [item for item in items if not item.startswith(ORG_SCOPE_PREFIX)]
    ctx.requested_scope = " ".join([*kept, ORG_SCOPE_PREFIX + fits[0].slug])
    return None


def _registered_for_organization(client: Any, slug: str) -> bool:
    """The client is registered for `org:<slug>` (or `org:*`)."""
    return bool(client_scope(client, ORG_SCOPE_PREFIX + slug))


def check_scope_limits(ctx: AuthorizationContext) -> Decision | None:
    """RFC 6749 section 3.3: what may be granted, the client's and the person's limits applied.

    `grantable_scope` decides it; the consent page offers exactly that set. The server
    may issue fewer scopes than requested and then says which in the token response's
    `scope` (always sent).
    """
    if ctx.user is None:
        return None
    requested = ctx.requested_scope
    if requested is None:
        requested = ctx.params.get("scope")
    ctx.grantable = ctx.scope = grantable_scope(ctx.client, ctx.user, requested)
    return None


def check_consent(ctx: AuthorizationContext) -> Decision | None:
    """Ask for consent unless the client is first-party or the person allowed it all before."""
    client = ctx.client
    if client.skip_consent and "consent" not in ctx.prompts:
        return None
    assert ctx.user is not None
    if "consent" not in ctx.prompts and has_consent(ctx.user.id, client.client_id, ctx.grantable):
        return None
    if "none" in ctx.prompts:
        return ctx.deny(ConsentRequiredError)
    return NeedConsent(ctx.grantable, ctx.organization)


def check_still_signed_in(ctx: AuthorizationContext) -> Decision | None:
    """The consent page's answer from someone signed out meanwhile (another tab): start over.

    The sign-in `check_authentication` asked for was made; it is not asked for again.
    """
    if ctx.user is not None and ctx.session is not None:
        return None
    if "none" in ctx.prompts:
        return ctx.deny(LoginRequiredError)
    return NeedSignIn()


@dataclass(frozen=True)
class Step:
    """A check and the endpoints it applies to."""

    check: Callable[[AuthorizationContext], Decision | None]
    endpoints: frozenset[Endpoint]


BOTH = frozenset(Endpoint)
AUTHORIZE = frozenset({Endpoint.AUTHORIZE})
CONSENT_ANSWER = frozenset({Endpoint.CONSENT_ANSWER})

# The whole flow, after Authlib has validated the client, redirect_uri, scope and PKCE.
# The consent page's answer checks the request again but does not prompt again.
PIPELINE = (
    Step(check_no_nul_characters, BOTH),
    Step(check_request_object, BOTH),
    Step(check_response_mode, BOTH),
    Step(check_prompt, BOTH),
    Step(check_max_age, BOTH),
    Step(check_claims_parameter, BOTH),
    Step(check_acr_values, BOTH),
    Step(check_resource, BOTH),
    Step(check_id_token_hint, BOTH),
    Step(check_authentication, AUTHORIZE),
    Step(check_account_selection, AUTHORIZE),
    Step(check_still_signed_in, CONSENT_ANSWER),
    Step(check_hinted_person, BOTH),
    Step(check_acr, BOTH),
    Step(check_organization, BOTH),
    Step(check_scope_limits, BOTH),
    Step(check_consent, AUTHORIZE),
)
# Each endpoint's checks, in pipeline order, picked once.
CHECKS = {
    endpoint: tuple(step.check for step in PIPELINE if endpoint in step.endpoints)
    for endpoint in Endpoint
}


def run_pipeline(ctx: AuthorizationContext, endpoint: Endpoint) -> Decision | None:
    """The first decision a step of this endpoint takes; None lets the request through."""
    for check in CHECKS[endpoint]:
        decision = check(ctx)
        if decision is not None:
            return decision
    return None


def continuation_params(params: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The request's own parameters, without ours."""
    return [(k, v) for k, v in params.items(multi=True) if k not in INTERNAL_PARAMS]


def _hint_names_someone_else(ctx: AuthorizationContext) -> bool:
    """OIDC Core section 8: the hint's `sub` is the one this client knows the person by."""
    if ctx.hint is None or ctx.user is None:
        return False
    return not is_subject_of(ctx.hint.sub, ctx.user, ctx.client)


def _signed_in_since_redirect(ctx: AuthorizationContext) -> bool:
    """True when this request came back from a sign-in we asked for, and it happened."""
    if ctx.session is None:
        return False
    own = continuation_params(ctx.params)
    return is_fresh(ctx.params.get(REAUTH_PARAM), own, ctx.session.auth_time)
