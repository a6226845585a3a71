"""Property: nothing leaves the server beyond registration ∩ consent ∩ holdings.

Hypothesis draws a client registration (scope subsets with `org:*` and `org:<slug>`), a
request (scopes, an `organization` parameter, a `claims` parameter naming any supported
claim in `id_token` and `userinfo`, essential or not), the person's pick of organization
and what they leave ticked on the real consent page. Then every scope and claim in the
id_token, userinfo, the access token and introspection must be covered by what the client
is registered for, what Alice allowed it (and the server remembers) and what Alice holds,
and the consent page must have offered exactly the grantable set. A silent (`prompt=none`)
request follows each, with another `claims` parameter.

The model below is written from the rules, not from the code: scopes in SCOPE_CLAIMS
cover their claims; `roles` covers `roles` (and, with the organization's `org:<slug>`,
`org_id`/`org_roles` in the id_token and userinfo); an access token carries `roles` with
the `roles` scope and the organization's claims with its `org:<slug>` scope.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from authserver.orgs.membership import add_member
from authserver.orgs.services import create_organization
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import authorize_params, basic, consent, exchange, pkce_pair, query
from tests.oauth_helpers import sign_in as sign_in_alice

RELEASE = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What a client may be registered for, beyond `openid` (always).
REGISTRABLE = (
    "profile",
    "email",
    "roles",
    "offline_access",
    "admin",
    "org:*",
    "org:acme",
    "org:gamma",
)
# What a request may ask for, beyond `openid` (always).
REQUESTABLE = (
    "profile",
    "email",
    "roles",
    "offline_access",
    "admin",
    "org:acme",
    "org:beta-labs",
    "org:gamma",
    "org:*",
)
ORGANIZATION_PARAMETERS = (
    None,
    None,
    "acme",
    "beta-labs",
    "gamma",
    "nowhere",
    "select",
    "select",
    "",
)
CLAIM_NAMES = (
    "sub",
    "name",
    "updated_at",
    "email",
    "email_verified",
    "roles",
    "org_id",
    "org_roles",
)
# Alice's holdings: no global role (so never `admin`), two organizations of three.
ORGANIZATIONS = {"acme": "Acme", "beta-labs": "Beta Labs", "gamma": "Gamma"}
ALICE_ORGANIZATIONS = {"acme": "developer", "beta-labs": "viewer"}
ORG = "org:"
# The rules, independently: which claims each granted scope covers in the id_token/userinfo.
SCOPE_CLAIMS = {
    "profile": {"name", "updated_at"},
    "email": {"email", "email_verified"},
    "roles": {"roles"},
}
ORGANIZATION_CLAIMS = {"org_id", "org_roles"}
# Claims every token of its kind carries, about the token rather than the person.
# `sid`: the session (Back-Channel Logout 1.0 section 2.1), not a claim about the person.
ID_TOKEN_FRAME = {
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "at_hash",
    "sid",
}
ACCESS_TOKEN_FRAME = {"iss", "sub", "aud", "client_id", "iat", "exp", "jti", "scope", "auth_time"}
INTROSPECTION_FRAME = ACCESS_TOKEN_FRAME | {"active", "token_type"}
HIDDEN_RE = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
OFFERED_RE = re.compile(r'<input type="checkbox" name="granted" value="([^"]*)"')
PICKER_RE = re.compile(r'name="organization" value="([^"]*)"')


@dataclass
class World:
    """One app, Alice signed in and her organizations; a new client for each example, so
    each starts without remembered consent and replays the same when Hypothesis shrinks."""

    app: Flask
    browser: FlaskClient
    keys: KeySet
    made: int = 0

    def new_client(self, registration: frozenset[str]) -> tuple[str, str]:
        self.made += 1
        rp, secret = make_client(name=f"RP {self.made}", scope=" ".join(sorted(registration)))
        assert secret is not None
        return rp.client_id, secret


@pytest.fixture
def world(app_factory: Any) -> Iterator[World]:
    app = app_factory(ratelimit_enabled=False)
    with app.app_context():
        alice = make_user()
        for slug, name in ORGANIZATIONS.items():
            organization = create_organization(name, slug=slug)
            if slug in ALICE_ORGANIZATIONS:
                add_member(organization, alice, ALICE_ORGANIZATIONS[slug])
        browser = app.test_client()
        sign_in_alice(browser)
        keys = KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())
        yield World(app=app, browser=browser, keys=keys)


# The model: what may be granted, from the rules


def registered(registration: frozenset[str], item: str) -> bool:
    if item in registration:
        return True
    return item.startswith(ORG) and item != ORG + "*" and ORG + "*" in registration


def held(item: str) -> bool:
    """Alice holds no global role (no `admin`) and two organizations."""
    if item == "admin":
        return False
    return not item.startswith(ORG) or item[len(ORG) :] in ALICE_ORGANIZATIONS


@dataclass
class Expected:
    """The model's answer to an authorization request: an error, a picker, or an offer."""

    error: str | None = None
    choices: list[str] = field(default_factory=list)  # the picker's organizations
    grantable: set[str] = field(default_factory=set)
    organization: str | None = None


def expected(
    registration: frozenset[str], requested: list[str], organization: str | None
) -> Expected:
    """The grantable set (registration ∩ holdings ∩ request, one organization at most)."""
    base = [item for item in requested if registered(registration, item) and held(item)]
    plain = {item for item in base if not item.startswith(ORG)}
    members = [slug for slug in ALICE_ORGANIZATIONS if registered(registration, ORG + slug)]
    if organization is None:
        named = [item[len(ORG) :] for item in requested if item.startswith(ORG)]
        fits = [slug for slug in members if slug in named]
        if not fits:
            return Expected(grantable=plain)
    elif organization not in ("", "select"):
        if not registered(registration, ORG + organization):
            return Expected(error="invalid_request")
        if organization not in ALICE_ORGANIZATIONS:
            return Expected(error="access_denied")
        fits = [organization]
    else:
        if not any(item.startswith(ORG) for item in registration):
            return Expected(error="invalid_request")
        fits = members
        if not fits:
            return Expected(error="access_denied")
    if len(fits) > 1:
        return Expected(choices=sorted(fits), grantable=plain)
    return Expected(grantable=plain | {ORG + fits[0]}, organization=fits[0])


def covered(scope: set[str], target: str) -> set[str]:
    """The claims about Alice a granted scope covers in `target`."""
    organizations = {item[len(ORG) :] for item in scope if item.startswith(ORG)}
    assert len(organizations) <= 1, f"tokens speak for one organization: {scope}"
    if target == "access_token":
        names = {"roles"} & scope
        return names | (ORGANIZATION_CLAIMS if organizations else set())
    names = {"sub"}
    for item in scope:
        names |= SCOPE_CLAIMS.get(item, set())
    if organizations and "roles" in scope:
        names |= ORGANIZATION_CLAIMS
    return names


# Strategies

CLAIM_SPEC = st.one_of(st.none(), st.builds(lambda flag: {"essential": flag}, st.booleans()))
MEMBER = st.dictionaries(st.sampled_from(CLAIM_NAMES), CLAIM_SPEC, max_size=6)
CLAIMS = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={"id_token": MEMBER, "userinfo": MEMBER}).map(json.dumps),
)


# Driving the pages


def authorize(world: World, params: dict[str, Any]) -> TestResponse:
    return world.browser.get("/authorize", query_string=params)


def pick(world: World, page: TestResponse, slug: str) -> TestResponse:
    """Choose an organization on the picker, as the person would."""
    fields = [(html.unescape(k), html.unescape(v)) for k, v in HIDDEN_RE.findall(page.text)]
    return world.browser.post("/authorize", data=MultiDict([*fields, ("organization", slug)]))


def decode(world: World, token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, world.keys).claims)


def check_tokens(
    world: World, client: tuple[str, str], code: str, verifier: str, granted: set[str], claims: Any
) -> None:
    """Every scope and claim of every token, userinfo and introspection is within `granted`."""
    client_id, secret = client
    response = exchange(world.browser, client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    body = response.get_json()
    scope = set(body["scope"].split())
    assert scope == granted, (scope, granted)
    organization = next((item[len(ORG) :] for item in scope if item.startswith(ORG)), None)
    org_claims = (
        {"org_id": organization, "org_roles": [ALICE_ORGANIZATIONS[organization]]}
        if organization
        else {}
    )

    access = decode(world, body["access_token"])
    assert set(access["scope"].split()) == scope
    person = {name: access[name] for name in set(access) - ACCESS_TOKEN_FRAME}
    expected_access = {
        name: value for name, value in org_claims.items() if name in covered(scope, "access_token")
    }
    assert person == expected_access, (person, scope)  # Alice's `roles` is empty: not sent

    id_token = decode(world, body["id_token"])
    asked = set((json.loads(claims) if claims else {}).get("id_token") or {})
    in_id_token = covered(scope, "id_token") & (asked | {"sub", "roles"} | ORGANIZATION_CLAIMS)
    assert set(id_token) - ID_TOKEN_FRAME | {"sub"} == in_id_token, (id_token, scope, asked)
    for name, value in org_claims.items():
        if name in id_token:
            assert id_token[name] == value

    info = world.browser.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).get_json()
    assert set(info) == covered(scope, "userinfo"), (info, scope)
    for name, value in org_claims.items():
        if name in info:
            assert info[name] == value

    introspected = world.browser.post(
        "/oauth2/introspect", data={"token": body["access_token"]}, headers=basic(client_id, secret)
    ).get_json()
    assert introspected["active"] is True
    assert set(introspected["scope"].split()) == scope
    assert set(introspected) <= INTROSPECTION_FRAME, introspected
    event("tokens checked")


@RELEASE
@given(data=st.data())
def test_nothing_leaves_beyond_registration_consent_and_holdings(
    world: World, data: st.DataObject
) -> None:
    registration = frozenset({"openid", *data.draw(st.sets(st.sampled_from(REGISTRABLE)))})
    client = world.new_client(registration)
    remembered: set[str] = set()  # the model of what Alice allowed this client
    requested = ["openid", *data.draw(st.lists(st.sampled_from(REQUESTABLE), unique=True))]
    organization = data.draw(st.sampled_from(ORGANIZATION_PARAMETERS), label="organization")
    claims = data.draw(CLAIMS, label="claims")
    prompt = data.draw(st.sampled_from([None, None, "consent"]), label="prompt")
    model = first = expected(registration, requested, organization)
    verifier, challenge = pkce_pair()
    params = authorize_params(
        client[0],
        challenge,
        scope=" ".join(requested),
        organization=organization,
        claims=claims,
        prompt=prompt,
    )
    response = authorize(world, params)

    if model.error:
        assert response.status_code == 302, response.text
        assert query(response)["error"] == model.error
        event(f"refused: {model.error}")
        return
    if model.choices:
        assert response.status_code == 200 and "Choose an organization" in response.text
        assert sorted(PICKER_RE.findall(response.text)) == model.choices
        slug = data.draw(st.sampled_from(model.choices), label="picked")
        model = Expected(grantable=model.grantable | {ORG + slug}, organization=slug)
        response = pick(world, response, slug)
        event("picked an organization")

    asks_consent = prompt == "consent" or not model.grantable <= remembered
    if asks_consent:
        assert response.status_code == 200 and 'value="allow"' in response.text, response.text
        offered = set(OFFERED_RE.findall(response.text))
        assert offered == model.grantable, (offered, model.grantable)
        if model.organization:
            name = ORGANIZATIONS[model.organization]
            assert f"Act for you in the organization {name}" in response.text
        optional = sorted(offered - {"openid"})
        ticked = data.draw(st.sets(st.sampled_from(optional)) if optional else st.just(set()))
        granted = set(ticked) | ({"openid"} & offered)
        response = consent(world.browser, response, granted=sorted(ticked))
        remembered -= offered - granted
        remembered |= granted
        event("consented to a subset" if granted != offered else "consented to all")
    else:
        granted = model.grantable
        event("remembered consent")
    assert response.status_code == 302, response.text
    got = query(response)
    assert response.headers["Location"].startswith(REDIRECT_URI + "?")
    assert "code" in got, got
    check_tokens(world, client, got["code"], verifier, granted, claims)

    # Later, silently, asking for other claims: no more than what was allowed.
    claims = data.draw(CLAIMS, label="silent claims")
    verifier, challenge = pkce_pair()
    params.update(code_challenge=challenge, prompt="none", claims=claims)
    params = {k: v for k, v in params.items() if v is not None}
    silent = query(authorize(world, params))
    if first.choices:
        assert silent["error"] == "interaction_required"  # the picker cannot be shown
    elif not model.grantable <= remembered:
        assert silent["error"] == "consent_required"
    else:
        assert "code" in silent, silent
        check_tokens(world, client, silent["code"], verifier, model.grantable, claims)
        event("silent code checked")
