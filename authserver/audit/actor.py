"""Who is acting: the one `Actor` type, and the actor of the current request.

An actor is named in the audit log by `type` and `id`: a person (`user`, their sub), a
client (`client`, its client_id), the `system` (command line, jobs) or `anonymous`.
`power` is what the actor may do (permission names, `*` for everything); the audit log
never reads it, the privilege ceiling (roles.ceiling) decides with it.

The web layer says who acts in a request: a view that authenticated someone other than
the signed-in person (an admin API token) calls `act_as`; otherwise the actor source a
higher layer registered at start-up (roles: the signed-in person) answers, when asked.
Nothing here imports the packages that know people, sessions or clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g, has_request_context

Power = frozenset[str]
NOTHING: Power = frozenset()
ACTOR_SOURCE = "authserver.audit.actor_source"


@dataclass(frozen=True)
class Actor:
    """Who performs a change, and the power they act with."""

    type: str
    id: str | None
    power: Power = NOTHING


ActorSource = Callable[[], Actor | None]


def register_actor_source(app: Flask, source: ActorSource) -> None:
    """The function that names the actor of a request when no view said (`act_as`)."""
    app.extensions[ACTOR_SOURCE] = source


def act_as(actor: Actor) -> None:
    """Declare the actor of this request (e.g. the holder of an admin API token)."""
    g.audit_actor = actor


def clear_actor() -> None:
    """Forget the declared actor (a view that declared one is done with it)."""
    g.pop("audit_actor", None)


def declared_actor() -> Actor | None:
    """The actor a view declared for this request with `act_as`, if any."""
    if not has_request_context():
        return None
    actor = g.get("audit_actor")
    return actor if isinstance(actor, Actor) else None


def request_actor() -> Actor | None:
    """The actor of this request: declared, else the registered source's; None outside one.

    Asked each time, never cached: a request that signs someone in acts as them after.
    """
    if not has_request_context():
        return None
    actor = declared_actor()
    if actor is not None:
        return actor
    source: ActorSource | None = current_app.extensions.get(ACTOR_SOURCE)
    return source() if source is not None else None
