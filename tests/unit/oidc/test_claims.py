"""Which claims a granted scope covers, for the id_token, userinfo and an access token."""

from __future__ import annotations

import pytest

from authserver.oidc.claims import covered_claims


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
