"""What a person allows a client: the one place that decides which scopes a client may get.

`grantable_scope` is the client's registration intersected with what the person holds;
the consent page lists exactly that set, and the person's choice on it (`granted_scope`)
is what a code, its tokens and their claims carry (oidc/claims.py maps scopes to claims).
Remembered consent stores the choice, so a person is asked again only for scopes they
have not allowed this client before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from authlib.oauth2.rfc6749 import AccessDeniedError
from sqlalchemy import bindparam, select

from ..accounts.models import User
from ..accounts.services import sub_of
from ..audit import record
from ..clients.cache import OAuthClient
from ..extensions import db
from ..orgs.services import ORG_SCOPE_PREFIX
from .interaction import AuthorizationContext, Deny
from .models import Consent
from .services import client_scope, limit_user_scope

# Plain words for the consent page; other scopes are shown by name.
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in with your account",
    "profile": "See your name",
    "email": "See your e-mail address",
    "offline_access": "Stay connected when you are not using it",
    "roles": "See your roles, here and in the organization you choose",
}
# Granted with any consent: signing in is what the person is here for (Deny refuses it).
REQUIRED_SCOPES = frozenset({"openid"})


def grantable_scope(client: OAuthClient, user: User, requested: str | None) -> str:
    """RFC 6749 section 3.3: the requested scopes this client is registered for and this
    person holds (`admin` for admins, `org:<slug>` for members), in request order.

    The consent page offers exactly this set; a grant never holds more.
    """
    return limit_user_scope(user, client_scope(client, requested))


def granted_scope(grantable: str, chosen: Iterable[str]) -> str:
    """The consent form's answer: the offered scopes the person left ticked, and `openid`.

    Anything posted that was not offered is ignored, so the form cannot widen a grant.
    """
    picked = set(chosen)
    return " ".join(item for item in grantable.split() if item in picked or item in REQUIRED_SCOPES)


def describe_scopes(
    scope: str, organization_names: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(scope, plain words) for each scope, in order; organizations by name when known."""
    return [(item, _describe(item, organization_names or {})) for item in scope.split()]


def _describe(item: str, organization_names: Mapping[str, str]) -> str:
    if item.startswith(ORG_SCOPE_PREFIX) and len(item) > len(ORG_SCOPE_PREFIX):
        slug = item[len(ORG_SCOPE_PREFIX) :]
        return f"Act for you in the organization {organization_names.get(slug, slug)}"
    return SCOPE_DESCRIPTIONS.get(item, item)


# Read on every authorization request of a signed-in person: built once.
CONSENTED_SCOPE = select(Consent.scope).where(
    Consent.user_id == bindparam("user_id"), Consent.client_id == bindparam("client_id")
)


def has_consent(user_id: int, client_id: str, scope: str) -> bool:
    """True when the person allowed this client every scope of `scope` (the grantable set)."""
    allowed = db.session.scalar(CONSENTED_SCOPE, {"user_id": user_id, "client_id": client_id})
    if allowed is None:
        return False
    return set(scope.split()) <= set(allowed.split())


def remember_consent(user_id: int, client_id: str, scope: str, offered: str = "") -> None:
    """Remember the person's latest answer for this client (the request commits it).

    `scope` (what they allowed) is added; scopes they were `offered` and left unticked
    are forgotten, so an earlier "yes" does not outlive a later "no".
    """
    row = db.session.scalar(
        select(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
    )
    if row is None:
        row = Consent(user_id=user_id, client_id=client_id, scope="")
        db.session.add(row)
    declined = set(offered.split()) - set(scope.split())
    row.scope = " ".join(sorted((set(row.scope.split()) - declined) | set(scope.split())))
    record(
        "consent.granted", subject=sub_of(user_id), client_id=client_id, details={"scope": scope}
    )


def apply_consent(ctx: AuthorizationContext, chosen: Iterable[str]) -> Deny | None:
    """The consent page's Allow: grant what the person left ticked of what it offered.

    Remembered as their latest answer (oauth/consent.py). An organization whose
    `org:<slug>` was unticked is not the grant's; allowing nothing at all is a denial.
    """
    assert ctx.user is not None
    ctx.scope = granted_scope(ctx.grantable, chosen)
    if ctx.grantable and not ctx.scope:
        return ctx.deny(AccessDeniedError, "Nothing was allowed.")
    organization = ctx.organization
    if organization is not None and ORG_SCOPE_PREFIX + organization.slug not in ctx.scope.split():
        ctx.organization = None
    remember_consent(ctx.user.id, ctx.client.client_id, ctx.scope, offered=ctx.grantable)
    return None
