"""The privilege ceiling: no one grants, obtains or hands a client more than they hold.

Every principal has a *power*: a set of permission names, `*` meaning everything.

  a person                 the permissions of the roles they hold (organization roles
                           grant none); nothing once disabled
  a client                 the permissions of its roles, plus `users:read` when it skips
                           consent (it then reads people's profiles without asking them)
  a service's API token    its client's roles
  a person's API token     the person's power within the roles of the client it came through
  the system (CLI)         everything
  dynamic registration     nothing

The rules, each stated once here and called by the services before they change anything:

  give or take away a role or permission   it lies within the actor's power
  act on a person                          the person's roles lie within the actor's power
  register or change a client              the client's power, before and after, lies within
                                           the actor's power, and every scope its own tokens
                                           carry (client_credentials) is one the actor could
                                           obtain for themselves
  manage an organization's members         the actor is its admin or holds `orgs:write`
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from flask import Flask, has_request_context

from ..audit.actor import NOTHING, Actor, Power, declared_actor, register_actor_source
from ..sessions.services import current_user
from .permissions import ALL, allows

if TYPE_CHECKING:
    from ..accounts.models import Role, User
    from ..clients.models import Client

EVERYTHING: Power = frozenset({ALL})
# A first-party client reads people's profiles without asking them: what users:read allows.
FIRST_PARTY_POWER: Power = frozenset({"users:read"})
ADMIN_SCOPE = "admin"
ORG_SCOPE_PREFIX = "org:"
ORG_ANY_SCOPE = ORG_SCOPE_PREFIX + "*"
ORG_ADMIN_ROLE = "admin"
ORGS_WRITE = "orgs:write"
# The grant under which a client's tokens speak for the client itself (RFC 6749 section 4.4).
OWN_TOKEN_GRANT = "client_credentials"


class PrivilegeError(ValueError):
    """An actor tried to go above its ceiling; the message says what it lacks, fit for a page."""


def person_actor(user: User, within: Power | None = None) -> Actor:
    """A person, optionally bounded by the client they act through (`within`)."""
    power = power_of_person(user)
    return Actor("user", user.sub, power if within is None else intersect(power, within))


def client_actor(client: Client) -> Actor:
    """A service client acting with its own access token (client_credentials)."""
    return Actor("client", client.client_id, power_of_service(client))


SYSTEM = Actor("system", None, EVERYTHING)
CLI = Actor("system", "cli", EVERYTHING)
ANONYMOUS = Actor("anonymous", None, NOTHING)
# RFC 7591: whoever holds an initial access token registers under this policy, with no power.
DYNAMIC_REGISTRATION = Actor("client", None, NOTHING)


def current_actor() -> Actor:
    """The actor of this request with its power (what a view declared with audit's
    `act_as`, else the signed-in person, else anonymous); the system outside any request."""
    if not has_request_context():
        return SYSTEM
    actor = declared_actor()
    if actor is not None:
        return actor
    user = current_user()
    return person_actor(user) if user is not None else ANONYMOUS


def signed_in_person() -> Actor | None:
    """The audit log's actor source (audit.actor): the signed-in person, named only.

    The audit log needs no power, so none is computed (no roles are loaded for it).
    """
    user = current_user()
    return Actor("user", user.sub) if user is not None else None


def init_app(app: Flask) -> None:
    """Name the signed-in person as the actor of requests whose views declare none."""
    register_actor_source(app, signed_in_person)


# The power of each kind of principal


def power_of_roles(roles: Iterable[Role]) -> Power:
    """Every permission the roles grant, as stored (`*` kept as is)."""
    return frozenset(permission for role in roles for permission in (role.permissions or []))


def power_of_person(user: User | None) -> Power:
    """What an active person may do: their roles' permissions. Organization roles grant none."""
    if user is None or not user.is_active:
        return NOTHING
    return power_of_roles(user.roles)


def client_power(roles_power: Power, skip_consent: bool) -> Power:
    """A client's power from its roles' permissions and whether it is first-party."""
    return (roles_power | FIRST_PARTY_POWER) if skip_consent else roles_power


def power_of_client(client: Client) -> Power:
    """Everything a client holds, enabled or not: to register or manage it needs this much."""
    return client_power(power_of_roles(client.roles), bool(client.skip_consent))


def power_of_service(client: Client) -> Power:
    """What a client's own access token may do at the admin API: its roles' permissions."""
    return power_of_roles(client.roles)


# Comparing powers


def intersect(first: Power, second: Power) -> Power:
    """What both allow: `*` is neutral, otherwise the common permissions."""
    if ALL in first:
        return second
    if ALL in second:
        return first
    return first & second


def missing_from(actor_power: Power, wanted: Iterable[str]) -> list[str]:
    """The wanted permissions the actor does not hold, sorted (`*` covers every one)."""
    if ALL in actor_power:
        return []
    return sorted(set(wanted) - actor_power)


def within(actor_power: Power, wanted: Iterable[str]) -> bool:
    """True when the actor holds every wanted permission (`*` only by holding `*`)."""
    return not missing_from(actor_power, wanted)


def require_within(actor_power: Power, wanted: Iterable[str], what: str = "give") -> None:
    """PrivilegeError naming what the actor lacks: "you cannot give the permission x, ...".

    `what` completes "you cannot ... the permission x": "give", "take away", "act on a
    person holding", "change a client holding".
    """
    missing = missing_from(actor_power, wanted)
    if missing:
        noun = "the permission" if len(missing) == 1 else "the permissions"
        names = ", ".join("* (everything)" if name == ALL else name for name in missing)
        raise PrivilegeError(f"you cannot {what} {noun} {names}, which you do not hold")


def is_staff(power: Power) -> bool:
    """True for a principal holding any admin permission at all (may open the console)."""
    return ALL in power or any(":" in permission for permission in power)


def grantable(actor_power: Power, roles: Iterable[Role]) -> list[Role]:
    """The roles whose permissions lie within the actor's power: what it may give."""
    return [role for role in roles if within(actor_power, role.permissions or [])]


# Scopes a principal may obtain for itself


def may_obtain_scope(power: Power, memberships: Collection[str], scope: str) -> bool:
    """Whether a principal could obtain this scope for itself.

    `admin` (the admin API) for staff; `org:*` with orgs:write; `org:<slug>` for members
    of that organization (`memberships`: their slugs) or with orgs:write; others for anyone.
    """
    if scope == ADMIN_SCOPE:
        return is_staff(power)
    if scope == ORG_ANY_SCOPE:
        return allows(power, ORGS_WRITE)
    if scope.startswith(ORG_SCOPE_PREFIX):
        return scope[len(ORG_SCOPE_PREFIX) :] in memberships or allows(power, ORGS_WRITE)
    return True


def own_token_scopes(grant_types: Iterable[str], scope: str) -> list[str]:
    """The scopes a client's own tokens carry: its registered scope under client_credentials.

    Without client_credentials the scopes only bound what people delegate, and people are
    limited when tokens are issued to them.
    """
    return scope.split() if OWN_TOKEN_GRANT in grant_types else []


# The rules


def require_may_act_on_person(actor: Actor, person: User) -> None:
    """Any change to a person needs all they hold, enabled or not: no one acts above themselves."""
    require_within(actor.power, power_of_roles(person.roles), "act on a person holding")


def require_may_change_roles(actor: Actor, before: Iterable[Role], after: Iterable[Role]) -> None:
    """Roles given and roles taken away must lie within the actor's power."""
    old, new = {role.name: role for role in before}, {role.name: role for role in after}
    added = [role for name, role in new.items() if name not in old]
    removed = [role for name, role in old.items() if name not in new]
    require_within(actor.power, power_of_roles(added), "give")
    require_within(actor.power, power_of_roles(removed), "take away")


def require_may_set_permissions(
    actor: Actor, before: Iterable[str] | None, after: Iterable[str] | None
) -> None:
    """A role's permissions: the old ones (None for a new role) and the new ones (None: kept)."""
    if before is not None:
        require_within(actor.power, before, "change a role holding")
    if after is not None:
        require_within(actor.power, after, "give")


def require_may_hold_client(
    actor: Actor,
    memberships: Collection[str],
    *,
    roles: Iterable[Role],
    skip_consent: bool,
    grant_types: Iterable[str],
    scope: str,
    what: str = "give a client",
    scopes_what: str = "give a client_credentials client",
) -> None:
    """A client (as it is, or as it would be) lies within what the actor could hold itself.

    Its power (roles, first-party) within the actor's power, and every scope of its own
    tokens one the actor could obtain: a client's own token is never more powerful than
    whoever registered or changed it.
    """
    require_within(actor.power, client_power(power_of_roles(roles), skip_consent), what)
    refused = [
        item
        for item in own_token_scopes(grant_types, scope)
        if not may_obtain_scope(actor.power, memberships, item)
    ]
    if refused:
        noun = "the scope" if len(refused) == 1 else "the scopes"
        raise PrivilegeError(
            f"you cannot {scopes_what} {noun} {', '.join(refused)}, "
            "which you could not obtain yourself"
        )


def require_may_manage_client(actor: Actor, client: Client, memberships: Collection[str]) -> None:
    """Any write to an existing client (change, new secret, disable, delete) needs its power."""
    require_may_hold_client(
        actor,
        memberships,
        roles=client.roles,
        skip_consent=bool(client.skip_consent),
        grant_types=client.grant_types or [],
        scope=client.scope or "",
        what="change a client holding",
        scopes_what="change a client_credentials client with",
    )


def needs_memberships(actor: Actor, grant_types: Iterable[str], scope: str) -> bool:
    """Whether deciding on this client needs the actor's organizations (a database read)."""
    return not allows(actor.power, ORGS_WRITE) and any(
        item.startswith(ORG_SCOPE_PREFIX) for item in own_token_scopes(grant_types, scope)
    )


# Organizations


def org_power(actor_power: Power, org_role: str | None) -> Power:
    """The organization roles an actor may hand out there: all for the organization's admins
    (`org_role`: the actor's role in it) and holders of orgs:write; none for anyone else.

    Organization roles grant no server permissions, so handing them out raises no one
    above the server-wide ceiling; the ceiling inside an organization is one's standing there.
    """
    if allows(actor_power, ORGS_WRITE) or org_role == ORG_ADMIN_ROLE:
        return EVERYTHING
    return NOTHING


def require_org_manager(actor_org_power: Power) -> None:
    """PrivilegeError unless the actor may manage the organization's members."""
    if not actor_org_power:
        raise PrivilegeError(
            "only the organization's admins and holders of orgs:write manage its members"
        )
