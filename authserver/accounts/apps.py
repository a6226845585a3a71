"""Connected apps on the account page: what the person allowed, and withdrawing it.

Consents and grants belong to `oauth`, a layer above `accounts`. The account page asks
through this seam; oauth registers its answers in its `init_app`
(`register_connected_apps`). Without oauth, the page lists no apps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask, current_app

from .models import User

PROVIDER = "authserver.accounts.connected_apps"


@dataclass
class ConnectedApp:
    """A client the person allowed, or that holds live tokens for them."""

    client_id: str
    name: str
    first_allowed: datetime
    scopes: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AppsProvider:
    """How to list a person's connected apps and withdraw one (False: nothing to withdraw)."""

    list_apps: Callable[[User], list[ConnectedApp]]
    revoke_app: Callable[[User, str], bool]


def register_connected_apps(app: Flask, provider: AppsProvider) -> None:
    """Called by the package that owns consents and grants (oauth), at start-up."""
    app.extensions[PROVIDER] = provider


def connected_apps(user: User) -> list[ConnectedApp]:
    """The person's connected apps, oldest first."""
    provider: AppsProvider | None = current_app.extensions.get(PROVIDER)
    return provider.list_apps(user) if provider is not None else []


def revoke_app(user: User, client_id: str) -> bool:
    """Withdraw consent and every grant of this person to this client; no commit."""
    provider: AppsProvider | None = current_app.extensions.get(PROVIDER)
    return provider.revoke_app(user, client_id) if provider is not None else False
