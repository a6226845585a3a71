"""The protocol capabilities of this server, listed once.

What discovery advertises, what client metadata may name, which client authentication
each endpoint accepts, how each endpoint is rate limited and whether it answers CORS:
all of it is read from here, so what is advertised and what works cannot drift apart
(node-oidc-provider's `lib/helpers/defaults.js` plays the same part).
tests/functional/test_capabilities.py walks this module and the discovery document and
checks that every capability listed works and every other one is refused.

Pure data: plain strings as the specifications spell them (Authlib and the database
use the same strings), tuples in the order discovery lists them, and frozensets and
dicts built once at import for the hot paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# Client authentication (RFC 6749 section 2.3; names from RFC 7591 section 2 and the
# IANA "OAuth Token Endpoint Authentication Methods" registry).
CLIENT_SECRET_BASIC = "client_secret_basic"  # RFC 6749 section 2.3.1, HTTP Basic
CLIENT_SECRET_POST = "client_secret_post"  # RFC 6749 section 2.3.1, in the body
NONE = "none"  # RFC 7591 section 2: a public client, identified by client_id alone
CLIENT_SECRET_JWT = "client_secret_jwt"  # OIDC Core section 9: not implemented
PRIVATE_KEY_JWT = "private_key_jwt"  # OIDC Core section 9 / RFC 7523: not implemented
TLS_CLIENT_AUTH = "tls_client_auth"  # RFC 8705 section 2.1: not implemented
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"  # RFC 8705 section 2.2

# What a client may register as its token_endpoint_auth_method, in discovery's order.
CLIENT_AUTH_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST, NONE)
# Methods that prove the client holds a secret (RFC 6749 section 2.1 confidential clients).
CONFIDENTIAL_AUTH_METHODS = (CLIENT_SECRET_BASIC, CLIENT_SECRET_POST)
# Registered names this server knows of and refuses (RFC 7591 section 3.2.2).
UNSUPPORTED_CLIENT_AUTH_METHODS = (
    CLIENT_SECRET_JWT,
    PRIVATE_KEY_JWT,
    TLS_CLIENT_AUTH,
    SELF_SIGNED_TLS_CLIENT_AUTH,
)
# The default when client metadata names none (RFC 7591 section 2).
DEFAULT_CLIENT_AUTH_METHOD = CLIENT_SECRET_BASIC

# Grant types (RFC 6749 sections 4.1, 6 and 4.4; RFC 8628 section 3.4).
AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"
CLIENT_CREDENTIALS = "client_credentials"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
PASSWORD = "password"  # RFC 9700 section 2.4: MUST NOT be used
IMPLICIT = "implicit"  # RFC 9700 section 2.1.2: SHOULD NOT be used
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523: not implemented
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693: not implemented

GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, CLIENT_CREDENTIALS, DEVICE_CODE)
UNSUPPORTED_GRANT_TYPES = (PASSWORD, IMPLICIT, JWT_BEARER, TOKEN_EXCHANGE)
# RFC 6749 section 4.4: client_credentials is for confidential clients only.
CONFIDENTIAL_GRANT_TYPES = frozenset({CLIENT_CREDENTIALS})
DEFAULT_GRANT_TYPES = (AUTHORIZATION_CODE,)  # RFC 7591 section 2

# Response types and modes (RFC 6749 section 3.1.1; OAuth 2.0 Multiple Response Type
# Encoding Practices). The code flow only: RFC 9700 section 2.1.2 retires the implicit flow.
CODE = "code"
RESPONSE_TYPES = (CODE,)
UNSUPPORTED_RESPONSE_TYPES = ("token", "id_token", "id_token token", "code id_token", "none")
# The response type each grant type needs (RFC 7591 section 2.1).
RESPONSE_TYPE_OF_GRANT = {AUTHORIZATION_CODE: CODE}
# `query` (RFC 6749 section 4.1.2) is the code flow's default; `form_post` (OAuth 2.0 Form
# Post Response Mode) posts the response from the browser. `fragment` is the implicit
# flow's and stays refused; JARM's `jwt` modes are not implemented.
QUERY = "query"
FORM_POST = "form_post"
RESPONSE_MODES = (QUERY, FORM_POST)
DEFAULT_RESPONSE_MODE = QUERY
UNSUPPORTED_RESPONSE_MODES = ("fragment", "jwt", "query.jwt", "form_post.jwt")

# OpenID Connect Core section 3.1.2.1 `prompt` (and Initiating User Registration 1.0's
# `create`, which we do not offer). `select_account` shows a choice: continue as the
# signed-in person, or sign in with another account (oauth/authorize.py).
PROMPT_NONE = "none"
PROMPT_LOGIN = "login"
PROMPT_CONSENT = "consent"
PROMPT_SELECT_ACCOUNT = "select_account"
PROMPT_VALUES = (PROMPT_NONE, PROMPT_LOGIN, PROMPT_CONSENT, PROMPT_SELECT_ACCOUNT)
UNSUPPORTED_PROMPT_VALUES = ("create",)

# RFC 7636 section 4.2, and RFC 9700 section 2.1.1: S256 only, required of every client.
S256 = "S256"
CODE_CHALLENGE_METHODS = (S256,)
UNSUPPORTED_CODE_CHALLENGE_METHODS = ("plain",)

# Subject identifier types (OpenID Connect Core section 8): what a client registers as
# `subject_type` (OIDC Registration 1.0 section 2). Pairwise is advertised only where the
# server holds a pairwise secret (`pairwise_secret`).
PUBLIC_SUBJECT = "public"
PAIRWISE_SUBJECT = "pairwise"
SUBJECT_TYPES = (PUBLIC_SUBJECT, PAIRWISE_SUBJECT)

# JWS algorithms (RFC 7518 section 3.1) of our signing keys: id_tokens (OIDC Core
# section 3.1.3.7), per client by `id_token_signed_response_alg` (OIDC Registration 2).
SIGNING_ALGS = ("RS256", "ES256")
ID_TOKEN_SIGNING_ALGS = SIGNING_ALGS

# OpenID Connect Back-Channel Logout 1.0 (logout tokens POSTed to each client's
# `backchannel_logout_uri`, with `sid`) and Front-Channel Logout 1.0 (an iframe per
# client's `frontchannel_logout_uri` on the signed-out page, with `iss` and `sid`).
# Client metadata naming them is accepted only while these are on; discovery advertises
# `*_logout_supported` and `*_logout_session_supported` from them.
BACKCHANNEL_LOGOUT = True
FRONTCHANNEL_LOGOUT = True
# Back-Channel Logout 1.0 section 2.4: the one event a logout token carries.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Section 2.4 (and RFC 8725 section 3.11): the logout token's JWS `typ`.
LOGOUT_TOKEN_TYPE = "logout+jwt"


class RateLimit(Enum):
    """How requests to an endpoint are counted (security/ratelimit.py applies it)."""

    PAGE = "pages"  # POSTs per client IP against `ratelimit_pages`; GETs are free
    API = "api"  # every request per client and IP (else per IP) against `ratelimit_api`
    NONE = "none"  # not counted; the endpoint's `unlimited_because` says why


class Cors(Enum):
    """Which origins may read an endpoint's answers (the Fetch standard's CORS protocol)."""

    NONE = "none"  # browsers navigate here, or it is not for browsers at all
    REGISTERED = "registered"  # the web origins registered on some active client
    PUBLIC = "public"  # any origin (`Access-Control-Allow-Origin: *`)


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its Flask name, rate limit, CORS, client authentication, parameters."""

    name: str  # the Flask endpoint, `blueprint.view`
    rate_limit: RateLimit
    unlimited_because: str = ""
    cors: Cors = Cors.NONE
    # Discovery (OIDC Discovery 1.0 section 3, RFC 8414 section 2): the metadata field
    # naming this endpoint's URL, and the path under the issuer.
    metadata: str | None = None
    path: str | None = None
    # Client authentication accepted here (RFC 6749 section 2.3), and the metadata field
    # advertising it (RFC 8414 section 2), if any.
    auth_methods: tuple[str, ...] = ()
    auth_methods_metadata: str | None = None
    # RFC 6749 section 3.1: parameters that MUST NOT be sent more than once.
    single_valued: tuple[str, ...] = ()
    # Authlib's name for the endpoint (`ENDPOINT_NAME`), where Authlib serves it.
    authlib_name: str | None = None
    # RFC 6749 section 4.1.2.1: bad parameters are reported to the client by redirect.
    reports_errors_to_client: bool = False
    # The Config flag without which discovery does not advertise the endpoint.
    advertised_when: str | None = None

    def __post_init__(self) -> None:
        if self.rate_limit is RateLimit.NONE and not self.unlimited_because:
            raise ValueError(f"{self.name}: an endpoint without a rate limit must say why")


CLIENT_AUTH_PARAMETERS = ("client_id", "client_secret", "client_assertion", "client_assertion_type")
_TOKEN_PARAMETERS = (
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "device_code",
    "username",
    "password",
    *CLIENT_AUTH_PARAMETERS,
)
# RFC 7009 section 2.1 and RFC 7662 section 2.1.
_TOKEN_HINT_PARAMETERS = ("token", "token_type_hint", *CLIENT_AUTH_PARAMETERS)
# RFC 6749 section 4.1.1, OIDC Core section 3.1.2.1, RFC 7636 section 4.3, RFC 9101.
_AUTHORIZE_PARAMETERS = (
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
_BROWSER = "a browser navigates here; its sign-in and consent POSTs are the limited pages"
_DOCUMENT = "a static public document, served from memory"


def _page(name: str) -> Endpoint:
    """A page people post a password, a code or a mail-sending form to."""
    return Endpoint(name, RateLimit.PAGE)


def _view(name: str, why: str) -> Endpoint:
    return Endpoint(name, RateLimit.NONE, unlimited_because=why)


ENDPOINTS = (
    # RFC 6749 section 3.1, OIDC Core section 3.1.2.
    Endpoint(
        "oauth.authorize",
        RateLimit.NONE,
        unlimited_because=_BROWSER,
        metadata="authorization_endpoint",
        path="/authorize",
        single_valued=_AUTHORIZE_PARAMETERS,
        reports_errors_to_client=True,
    ),
    Endpoint(
        "oauth.authorize_decision",
        RateLimit.NONE,
        unlimited_because="the consent form, behind a signed-in session and a CSRF token",
        reports_errors_to_client=True,
    ),
    # OIDC Core section 3.1.2.1 `prompt=select_account`: the account choice's answer.
    _view("oauth.select_account", "the account choice, a CSRF-protected form that only redirects"),
    # RFC 6749 section 3.2.
    Endpoint(
        "oauth.token",
        RateLimit.API,
        cors=Cors.REGISTERED,
        metadata="token_endpoint",
        path="/oauth2/token",
        auth_methods=CLIENT_AUTH_METHODS,
        auth_methods_metadata="token_endpoint_auth_methods_supported",
        single_valued=_TOKEN_PARAMETERS,
        authlib_name="token",
    ),
    # RFC 7009 section 2.
    Endpoint(
        "oauth.revoke",
        RateLimit.API,
        cors=Cors.REGISTERED,
        metadata="revocation_endpoint",
        path="/oauth2/revoke",
        auth_methods=CLIENT_AUTH_METHODS,
        auth_methods_metadata="revocation_endpoint_auth_methods_supported",
        single_valued=_TOKEN_HINT_PARAMETERS,
        authlib_name="revocation",
    ),
    # RFC 7662 section 2: for confidential clients only.
    Endpoint(
        "oauth.introspect",
        RateLimit.API,
        metadata="introspection_endpoint",
        path="/oauth2/introspect",
        auth_methods=CONFIDENTIAL_AUTH_METHODS,
        auth_methods_metadata="introspection_endpoint_auth_methods_supported",
        single_valued=_TOKEN_HINT_PARAMETERS,
        authlib_name="introspection",
    ),
    # RFC 8628 sections 3.1 and 4.
    Endpoint(
        "device.device_authorization",
        RateLimit.API,
        metadata="device_authorization_endpoint",
        path="/oauth2/device_authorization",
        auth_methods=CLIENT_AUTH_METHODS,
        single_valued=("scope", *CLIENT_AUTH_PARAMETERS),
        authlib_name="device_authorization",
    ),
    _view("device.enter_code", "a page people read; entering the code is device.submit_code"),
    _page("device.submit_code"),
    _page("device.decide"),
    _view("device.done", "a page people read after deciding"),
    # OIDC Core section 5.3.
    Endpoint(
        "oidc.userinfo",
        RateLimit.NONE,
        unlimited_because="a resource read with a bearer token checked by signature, no writes",
        cors=Cors.REGISTERED,
        metadata="userinfo_endpoint",
        path="/userinfo",
    ),
    # RFC 7517 section 5; OIDC Discovery 1.0 section 4; RFC 8414 section 3.
    Endpoint(
        "keys.jwks",
        RateLimit.NONE,
        unlimited_because=_DOCUMENT,
        cors=Cors.PUBLIC,
        metadata="jwks_uri",
        path="/.well-known/jwks.json",
    ),
    Endpoint(
        "discovery.openid_configuration",
        RateLimit.NONE,
        unlimited_because=_DOCUMENT,
        cors=Cors.PUBLIC,
        path="/.well-known/openid-configuration",
    ),
    Endpoint(
        "discovery.oauth_authorization_server",
        RateLimit.NONE,
        unlimited_because=_DOCUMENT,
        cors=Cors.PUBLIC,
        path="/.well-known/oauth-authorization-server",
    ),
    # OpenID Connect RP-Initiated Logout 1.0 section 2.
    Endpoint(
        "logout.logout",
        RateLimit.NONE,
        unlimited_because=_BROWSER,
        metadata="end_session_endpoint",
        path="/logout",
    ),
    _view("logout.signed_out", "a page people read after signing out"),
    # RFC 7591 section 3 and RFC 7592 section 2: bearer-token writes, counted as API calls.
    Endpoint(
        "registration.register",
        RateLimit.API,
        metadata="registration_endpoint",
        path="/oauth2/register",
        advertised_when="dynamic_registration",
    ),
    Endpoint("registration.read", RateLimit.API),
    Endpoint("registration.replace", RateLimit.API),
    Endpoint("registration.delete", RateLimit.API),
    # The pages that check a password or a code, and those that send mail.
    _page("accounts.login"),
    _page("accounts.signup"),
    _page("accounts.forgot_password"),
    _page("accounts.reset_password"),
    _page("accounts.resend_verification"),
    _page("account.change_email"),
    _page("account.change_password"),
    _page("two_step.challenge"),
    _page("two_step.confirm"),
    _page("two_step.disable"),
    _page("orgs.invite"),
)
# Blueprints whose every endpoint must be listed above (security/ratelimit.py checks it
# when the app starts): a new protocol endpoint cannot go without a rate-limit class.
PROTOCOL_BLUEPRINTS = frozenset(
    {"oauth", "device", "oidc", "keys", "discovery", "logout", "registration"}
)

ENDPOINTS_BY_NAME = {endpoint.name: endpoint for endpoint in ENDPOINTS}
ENDPOINTS_BY_AUTHLIB_NAME = {e.authlib_name: e for e in ENDPOINTS if e.authlib_name}
PAGE_ENDPOINTS = frozenset(e.name for e in ENDPOINTS if e.rate_limit is RateLimit.PAGE)
API_ENDPOINTS = frozenset(e.name for e in ENDPOINTS if e.rate_limit is RateLimit.API)
REGISTERED_ORIGIN_ENDPOINTS = frozenset(e.name for e in ENDPOINTS if e.cors is Cors.REGISTERED)
PUBLIC_ENDPOINTS = frozenset(e.name for e in ENDPOINTS if e.cors is Cors.PUBLIC)
CORS_ENDPOINTS = REGISTERED_ORIGIN_ENDPOINTS | PUBLIC_ENDPOINTS
REPORTS_BAD_PARAMETERS_TO_THE_CLIENT = frozenset(
    e.name for e in ENDPOINTS if e.reports_errors_to_client
)


def endpoint(name: str) -> Endpoint:
    """The registered endpoint with this Flask name (KeyError for an unknown one)."""
    return ENDPOINTS_BY_NAME[name]


def auth_methods(name: str) -> tuple[str, ...]:
    """The client authentication methods the endpoint `name` (Flask name) accepts."""
    return ENDPOINTS_BY_NAME[name].auth_methods


def response_types_for(grant_types: list[str]) -> list[str]:
    """RFC 7591 section 2.1: the response types that go with these grant types."""
    return [RESPONSE_TYPE_OF_GRANT[g] for g in grant_types if g in RESPONSE_TYPE_OF_GRANT]


def auth_methods_for_grant(grant_type: str) -> tuple[str, ...]:
    """RFC 6749 section 4.4: the methods a client of this grant type may authenticate with."""
    if grant_type in CONFIDENTIAL_GRANT_TYPES:
        return CONFIDENTIAL_AUTH_METHODS
    return CLIENT_AUTH_METHODS


def subject_types(config: object) -> tuple[str, ...]:
    """OIDC Core section 8: the subject types clients may register with under `config`."""
    if getattr(config, "pairwise_secret", ""):
        return SUBJECT_TYPES
    return (PUBLIC_SUBJECT,)
