"""What the authorization steps know about a request, and what they can ask for.

RFC 6749 section 4.1.1 and OpenID Connect Core section 3.1.2. The steps
(`oauth/authorize.py`) read and fill one `AuthorizationContext`; a step that cannot let
the request through returns a decision: sign in (again), pick an organization, consent,
or an error for the client. The web layer (`oauth/views.py`) renders what a decision
asks for; the steps never render or redirect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from werkzeug.datastructures import MultiDict

from ..accounts.models import User
from ..clients.cache import OAuthClient
from ..core import capabilities
from ..oidc.id_token_hint import IdTokenHint
from ..orgs.models import Organization
from ..sessions.models import LoginSession


class Endpoint(StrEnum):
    """Where a step runs: each step is tagged with the endpoints it applies to."""

    # RFC 6749 section 3.1: GET or POST /authorize.
    AUTHORIZE = "authorize"
    # The consent page's answer (POST /authorize/decision): the request is checked again.
    CONSENT_ANSWER = "consent_answer"


@dataclass
class AuthorizationContext:
    """One authorization request, as the steps learn it (Authlib has checked the client,
    redirect_uri, response_type, scope and PKCE before)."""

    params: MultiDict[str, str]
    client: OAuthClient
    # The verified redirect_uri: errors go there (RFC 6749 section 4.1.2.1).
    redirect_uri: str
    user: User | None
    session: LoginSession | None
    # How responses reach the client (oauth/response_modes.py): the supported mode the
    # request asked for, else the default; every redirect to the client goes this way.
    response_mode: str = capabilities.DEFAULT_RESPONSE_MODE
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
    organization: Organization | None = None

    def deny(self, error_cls: type[OAuth2Error], description: str | None = None) -> Deny:
        """An error that is sent back to the client's (already verified) redirect_uri."""
        return Deny(
            error_cls(
                description=description,
                redirect_uri=self.redirect_uri,
                state=self.params.get("state"),
            ),
            self.response_mode,
        )


@dataclass(frozen=True)
class NeedSignIn:
    """OpenID Connect Core section 3.1.2.3: the person signs in (again) first."""


@dataclass(frozen=True)
class NeedStepUp:
    """Section 5.5.1.1: the person signs in again with a second factor for a higher `acr`."""


@dataclass(frozen=True)
class NeedAccountSelection:
    """Section 3.1.2.1 `prompt=select_account`: continue as the signed-in person, or sign in
    with another account."""


@dataclass(frozen=True)
class NeedOrganization:
    """The person picks which of these organizations the tokens speak for."""

    choices: list[Organization]


@dataclass(frozen=True)
class NeedConsent:
    """The person allows (some of) `scopes`, `organization` named by its `org:` scope."""

    scopes: str
    organization: Organization | None


@dataclass(frozen=True)
class Deny:
    """RFC 6749 section 4.1.2.1: an error response (redirected when the client is verified),
    delivered by the request's response mode."""

    error: OAuth2Error
    response_mode: str = capabilities.DEFAULT_RESPONSE_MODE


Decision = NeedSignIn | NeedStepUp | NeedAccountSelection | NeedOrganization | NeedConsent | Deny
