"""The privilege ceiling, as rules on permission sets: no one gives more than they hold.

Roles, people and clients are stand-ins here (the rules read only their attributes), so
hypothesis can try thousands of random powers without a database.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authserver.audit import Actor
from authserver.roles import ceiling
from authserver.roles.ceiling import (
    ALL,
    CLI,
    DYNAMIC_REGISTRATION,
    SYSTEM,
    PrivilegeError,
    client_actor,
    person_actor,
)
from authserver.roles.permissions import BUILTIN_PERMISSIONS, PERMISSIONS

CATALOGUE = sorted(PERMISSIONS)
permission = st.sampled_from([*CATALOGUE, ALL])
power = st.frozensets(permission)
explicit_power = st.frozensets(st.sampled_from(CATALOGUE))
slugs = st.frozensets(st.sampled_from(["acme", "globex", "initech"]))
scope_item = st.sampled_from(
    ["openid", "profile", "api", "admin", "org:*", "org:acme", "org:globex", "org:initech"]
)
scopes = st.lists(scope_item, unique=True).map(" ".join)
grant_types = st.sampled_from(
    [["client_credentials"], ["authorization_code", "refresh_token"], ["client_credentials", "x"]]
)


def role(name: str, permissions: Any) -> Any:
    return SimpleNamespace(name=name, permissions=sorted(permissions))


def person(*roles: Any, active: bool = True) -> Any:
    return SimpleNamespace(sub="sub-1", roles=list(roles), is_active=active)


def client(*roles: Any, skip_consent: bool = False, grants: Any = (), scope: str = "") -> Any:
    return SimpleNamespace(
        client_id="c-1",
        roles=list(roles),
        skip_consent=skip_consent,
        grant_types=list(grants),
        scope=scope,
    )


def holds(actor_power: frozenset[str], wanted: frozenset[str]) -> bool:
    """The rule, restated independently: `*` covers all, otherwise a subset."""
    return ALL in actor_power or wanted <= actor_power


def same_power(a: frozenset[str], b: frozenset[str]) -> bool:
    """Each allows what the other does."""
    return holds(a, b) and holds(b, a)


# within / require_within


@given(power, power)
def test_within_is_holding_everything_wanted(actor_power: frozenset, wanted: frozenset) -> None:
    assert ceiling.within(actor_power, wanted) == holds(actor_power, wanted)


@given(power)
def test_everything_covers_any_power_and_only_everything_covers_everything(p: frozenset) -> None:
    assert ceiling.within(ceiling.EVERYTHING, p)
    assert ceiling.within(p, ceiling.EVERYTHING) == (ALL in p)
    assert ceiling.within(p, p) and ceiling.within(p, ceiling.NOTHING)


@given(explicit_power)
def test_holding_every_catalogue_permission_is_not_holding_everything(p: frozenset) -> None:
    # `*` also covers permissions added to the catalogue later: only `*` gives `*`.
    assert not ceiling.within(frozenset(CATALOGUE), {ALL})
    assert ceiling.within(frozenset(CATALOGUE), p)


@given(power, power, power)
def test_within_is_transitive(a: frozenset, b: frozenset, c: frozenset) -> None:
    if ceiling.within(a, b) and ceiling.within(b, c):
        assert ceiling.within(a, c)


@given(power, power)
def test_require_within_refuses_exactly_what_within_refuses_and_names_what_is_missing(
    actor_power: frozenset, wanted: frozenset
) -> None:
    if holds(actor_power, wanted):
        ceiling.require_within(actor_power, wanted)
        return
    with pytest.raises(PrivilegeError) as refused:
        ceiling.require_within(actor_power, wanted, "give")
    message = str(refused.value)
    assert message.startswith("you cannot give the permission")
    assert message.endswith("which you do not hold")
    for name in wanted - actor_power:
        assert (name if name != ALL else "* (everything)") in message
    for name in wanted & actor_power - {ALL}:
        assert f" {name}," not in message and not message.endswith(f" {name}")


def test_the_message_reads_as_a_sentence_for_a_page() -> None:
    with pytest.raises(PrivilegeError, match=r"^you cannot give the permission users:write, which"):
        ceiling.require_within(frozenset({"users:read"}), {"users:write"})
    with pytest.raises(PrivilegeError, match=r"the permissions \* \(everything\), users:write"):
        ceiling.require_within(frozenset(), {"users:write", ALL})
    assert issubclass(PrivilegeError, ValueError)


# The power of principals


@given(power, power)
def test_intersect_is_within_both_and_everything_is_neutral(a: frozenset, b: frozenset) -> None:
    both = ceiling.intersect(a, b)
    assert ceiling.within(a, both) and ceiling.within(b, both)
    assert same_power(ceiling.intersect(a, ceiling.EVERYTHING), a)
    assert same_power(ceiling.intersect(ceiling.EVERYTHING, b), b)


@given(st.lists(power, max_size=4), st.booleans())
def test_a_person_holds_their_roles_while_active(powers: list, active: bool) -> None:
    roles = [role(f"r{n}", p) for n, p in enumerate(powers)]
    union = frozenset().union(*powers)
    assert ceiling.power_of_roles(roles) == union
    assert ceiling.power_of_person(person(*roles, active=active)) == (union if active else set())
    assert ceiling.power_of_person(None) == ceiling.NOTHING


@given(st.lists(power, max_size=3), st.booleans())
def test_a_client_holds_its_roles_and_users_read_when_first_party(
    powers: list, skip_consent: bool
) -> None:
    roles = [role(f"r{n}", p) for n, p in enumerate(powers)]
    target = client(*roles, skip_consent=skip_consent)
    union = frozenset().union(*powers)
    assert ceiling.power_of_service(target) == union
    assert ceiling.power_of_client(target) == (union | {"users:read"} if skip_consent else union)


@given(power, power)
def test_a_person_through_a_client_never_exceeds_either(mine: frozenset, tool: frozenset) -> None:
    actor = person_actor(person(role("mine", mine)), within=tool)
    assert ceiling.within(mine, actor.power) and ceiling.within(tool, actor.power)
    assert actor.type == "user" and actor.id == "sub-1"


def test_the_builtin_actors() -> None:
    assert SYSTEM.power == CLI.power == ceiling.EVERYTHING
    assert (CLI.type, CLI.id) == ("system", "cli")
    assert DYNAMIC_REGISTRATION.power == ceiling.NOTHING
    assert Actor("user", "x").power == ceiling.NOTHING  # no power unless given one
    assert ceiling.current_actor() is SYSTEM  # outside a request: the command line


def test_a_service_acts_with_its_roles_only() -> None:
    admin_role = role("admin", [ALL])
    assert client_actor(client(admin_role, skip_consent=True)).power == {ALL}
    assert client_actor(client()).power == ceiling.NOTHING


@given(power)
def test_staff_hold_at_least_one_admin_permission(p: frozenset) -> None:
    assert ceiling.is_staff(p) == bool(p)
    assert not ceiling.is_staff(ceiling.NOTHING)


def test_grantable_roles_are_those_within_the_actor() -> None:
    builtin = [role(name, perms) for name, perms in BUILTIN_PERMISSIONS.items()]
    helpdesk = role("helpdesk", ["users:write"])
    everything = [*builtin, helpdesk]
    names = lambda actor_power: [r.name for r in ceiling.grantable(actor_power, everything)]  # noqa: E731
    assert names(frozenset({ALL})) == ["admin", "developer", "viewer", "helpdesk"]
    assert names(frozenset(BUILTIN_PERMISSIONS["developer"])) == ["developer"]
    assert names(frozenset({"users:write"})) == ["helpdesk"]


# Scopes a principal may obtain for itself


@given(power, slugs, scope_item)
def test_who_may_obtain_which_scope(p: frozenset, member_of: frozenset, item: str) -> None:
    orgs_write = ALL in p or "orgs:write" in p
    expected = {
        "admin": bool(p),
        "org:*": orgs_write,
    }.get(item, item[4:] in member_of or orgs_write if item.startswith("org:") else True)
    assert ceiling.may_obtain_scope(p, member_of, item) == expected


# The rules


@given(power, st.lists(power, max_size=3), st.booleans(), grant_types, scopes, slugs)
def test_a_client_is_within_the_actor_or_refused(
    actor_power: frozenset,
    powers: list,
    skip_consent: bool,
    grants: list,
    scope: str,
    member_of: frozenset,
) -> None:
    roles = [role(f"r{n}", p) for n, p in enumerate(powers)]
    actor = Actor("user", "sub-1", actor_power)
    wanted = frozenset().union(*powers) | ({"users:read"} if skip_consent else set())
    own = scope.split() if "client_credentials" in grants else []
    ok = holds(actor_power, wanted) and all(
        ceiling.may_obtain_scope(actor_power, member_of, item) for item in own
    )
    decide = lambda: ceiling.require_may_hold_client(  # noqa: E731
        actor, member_of, roles=roles, skip_consent=skip_consent, grant_types=grants, scope=scope
    )
    if ok:
        decide()
    else:
        with pytest.raises(PrivilegeError):
            decide()


def test_the_own_token_scope_rule_applies_to_client_credentials_only() -> None:
    nobody = DYNAMIC_REGISTRATION
    for scope in ("admin", "org:*", "org:acme"):
        with pytest.raises(
            PrivilegeError, match=re.escape(f"scope {scope}, which you could not obtain")
        ):
            ceiling.require_may_hold_client(
                nobody, (), roles=[], skip_consent=False, grant_types=["client_credentials"],
                scope=f"api {scope}",
            )  # fmt: skip
        ceiling.require_may_hold_client(
            nobody, (), roles=[], skip_consent=False, grant_types=["authorization_code"],
            scope=f"openid {scope}",
        )  # fmt: skip
    with pytest.raises(PrivilegeError, match="users:read"):
        ceiling.require_may_hold_client(
            nobody, (), roles=[], skip_consent=True, grant_types=["authorization_code"], scope=""
        )


@given(power, power)
def test_managing_a_client_needs_all_it_holds(actor_power: frozenset, held: frozenset) -> None:
    target = client(role("r", held), grants=["authorization_code"], scope="openid")
    actor = Actor("user", "s", actor_power)
    if holds(actor_power, held):
        ceiling.require_may_manage_client(actor, target, ())
    else:
        with pytest.raises(PrivilegeError, match=r"^you cannot change a client holding"):
            ceiling.require_may_manage_client(actor, target, ())


@given(power, power, power)
def test_roles_given_and_taken_away_lie_within_the_actor(
    actor_power: frozenset, kept: frozenset, changed: frozenset
) -> None:
    actor = Actor("user", "s", actor_power)
    same, other = role("same", kept), role("other", changed)
    for before, after in (([same], [same, other]), ([same, other], [same])):
        if holds(actor_power, changed):
            ceiling.require_may_change_roles(actor, before, after)
        else:
            with pytest.raises(PrivilegeError):
                ceiling.require_may_change_roles(actor, before, after)
    ceiling.require_may_change_roles(actor, [same], [same])  # nothing given, nothing taken


@given(power, st.lists(power, max_size=3), st.booleans())
def test_acting_on_a_person_needs_everything_they_hold_enabled_or_not(
    actor_power: frozenset, powers: list, active: bool
) -> None:
    target = person(*[role(f"r{n}", p) for n, p in enumerate(powers)], active=active)
    actor = Actor("user", "s", actor_power)
    if holds(actor_power, frozenset().union(*powers)):
        ceiling.require_may_act_on_person(actor, target)
    else:
        with pytest.raises(PrivilegeError, match=r"^you cannot act on a person holding"):
            ceiling.require_may_act_on_person(actor, target)


@given(power, st.one_of(st.none(), power), st.one_of(st.none(), power))
def test_a_role_changes_only_within_the_actor(
    actor_power: frozenset, before: frozenset | None, after: frozenset | None
) -> None:
    actor = Actor("user", "s", actor_power)
    ok = all(holds(actor_power, p) for p in (before, after) if p is not None)
    if ok:
        ceiling.require_may_set_permissions(actor, before, after)
    else:
        with pytest.raises(PrivilegeError):
            ceiling.require_may_set_permissions(actor, before, after)


# Organizations


@given(power, st.sampled_from([None, "admin", "developer", "viewer"]))
def test_the_ceiling_inside_an_organization_is_ones_standing_there(
    actor_power: frozenset, org_role: str | None
) -> None:
    manager = org_role == "admin" or ALL in actor_power or "orgs:write" in actor_power
    granted = ceiling.org_power(actor_power, org_role)
    assert granted == (ceiling.EVERYTHING if manager else ceiling.NOTHING)
    if manager:
        ceiling.require_org_manager(granted)
    else:
        with pytest.raises(PrivilegeError, match="organization's admins"):
            ceiling.require_org_manager(granted)
