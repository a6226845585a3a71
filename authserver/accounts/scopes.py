"""Plain words for scopes on the consent page."""

from __future__ import annotations

from collections.abc import Iterable

# OpenID Connect Core sections 5.4 and 11 define these scopes.
SCOPE_DESCRIPTIONS = {
    "openid": "Sign you in with your account",
    "profile": "See your name and basic profile",
    "email": "See your e-mail address",
    "address": "See your postal address",
    "phone": "See your phone number",
    "offline_access": "Stay connected when you are not using it",
}


def describe_scope(scope: str) -> str:
    """Plain words for one scope; other scopes are shown by their name."""
    return SCOPE_DESCRIPTIONS.get(scope, scope)


def describe_scopes(scopes: Iterable[str]) -> list[tuple[str, str]]:
    """(scope, plain words) pairs, in the order given, for the consent template."""
    return [(scope, describe_scope(scope)) for scope in scopes]
