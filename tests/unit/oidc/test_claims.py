"""Which claims a granted scope covers, for the id_token, userinfo and an access token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from authserver.accounts.models import User
from authserver.oidc.claims import claims_for, covered_claims


@pytest.mark.parametrize("target", ["id_token", "userinfo"])
def test_scopes_cover_their_claims_about_the_person(target: str) -> None:
    assert covered_claims("openid", target) == {"sub"}
    assert covered_claims("openid profile", target) == {"sub", "name", "updated_at"}
    assert covered_claims("openid email", target) == {"sub", "email", "email_verified"}
    assert covered_claims("openid roles", target) == {"sub", "roles"}
    assert covered_claims("openid admin offline_access org:acme", target, "acme") == {"sub"}


@pytest.mark.parametrize("target", ["id_token", "userinfo"])
def test_the_organization_needs_its_own_scope_and_roles(target: str) -> None:
    org = {"org_id", "org_roles"}
    assert org <= covered_claims("openid roles org:acme", target, "acme")
    assert not org & covered_claims("openid roles", target, "acme")
    assert not org & covered_claims("openid roles org:beta", target, "acme")
    assert not org & covered_claims("openid org:acme", target, "acme")


def test_an_access_token_covers_roles_and_the_organization_by_scope() -> None:
    assert covered_claims("openid profile email", "access_token") == frozenset()
    assert covered_claims("roles", "access_token") == {"roles"}
    assert covered_claims("org:acme", "access_token", "acme") == {"org_id", "org_roles"}
    assert covered_claims("org:beta", "access_token", "acme") == frozenset()
    assert covered_claims("roles org:acme", "access_token", None) == {"roles"}


def alice() -> User:
    """A person, never stored: the claims rule reads only her attributes."""
    return User(
        sub="alice-sub",
        email="alice@example.com",
        email_verified=True,
        name="Alice Liddell",
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def alice_claims_for(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """`claims_for` of alice, for a client that knows her by her public `sub`."""
    return claims_for(alice(), *args, subject="alice-sub", **kwargs)


def test_by_default_the_id_token_carries_scope_claims_only_when_the_claims_parameter_asks() -> None:
    """OIDC Core 5.4: with an access token, scope claims go to userinfo."""
    assert alice_claims_for("openid profile email", "id_token", {}) == {"sub": "alice-sub"}
    asked = {"id_token": {"email": None}}
    assert alice_claims_for("openid profile email", "id_token", {}, asked) == {
        "sub": "alice-sub",
        "email": "alice@example.com",
    }


def test_claims_in_id_token_puts_every_claim_of_the_granted_scopes_in_the_id_token() -> None:
    every = alice_claims_for("openid profile email", "id_token", {}, claims_in_id_token=True)
    assert every == alice_claims_for("openid profile email", "userinfo", {})
    assert set(every) == {"sub", "name", "updated_at", "email", "email_verified"}


def test_claims_in_id_token_adds_nothing_the_scope_does_not_cover() -> None:
    only_profile = alice_claims_for(
        "openid profile",
        "id_token",
        {},
        {"id_token": {"email": {"essential": True}}},  # asking cannot add it either
        claims_in_id_token=True,
    )
    assert set(only_profile) == {"sub", "name", "updated_at"}
    assert alice_claims_for("openid", "id_token", {}, claims_in_id_token=True) == {
        "sub": "alice-sub"
    }
    # The option is about the id_token: access tokens and userinfo are unchanged.
    assert alice_claims_for("openid email", "access_token", {}, claims_in_id_token=True) == {}
