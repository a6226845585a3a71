"""Factories for the things tests need: people and clients, made through the services.

Services do not commit (the request or CLI command does, core.uow); a factory stands in
for that edge and commits what it made, as the request that made it would have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authserver.accounts.models import User
from authserver.accounts.services import create_user
from authserver.clients.initial_access import issue_initial_access_token
from authserver.clients.models import Client
from authserver.clients.services import create_client
from authserver.extensions import db
from authserver.roles.ceiling import SYSTEM

PASSWORD = "correct horse battery staple"
REDIRECT_URI = "https://rp.example.com/callback"


def make_user(
    email: str = "alice@example.com",
    password: str = PASSWORD,
    name: str = "Alice Liddell",
    roles: Sequence[str] = (),
    email_verified: bool = True,
) -> User:
    user = create_user(
        email, password=password, name=name, roles=list(roles), email_verified=email_verified
    )
    db.session.commit()
    return user


def make_client(
    name: str = "Test RP",
    redirect_uris: Sequence[str] = (REDIRECT_URI,),
    grant_types: Sequence[str] = ("authorization_code", "refresh_token"),
    scope: str = "openid profile email offline_access",
    auth_method: str = "client_secret_basic",
    **extra: Any,
) -> tuple[Client, str | None]:
    """A client and its secret (None for a public client), registered by the system."""
    extra.setdefault("actor", SYSTEM)
    made = create_client(
        name=name,
        redirect_uris=list(redirect_uris),
        grant_types=list(grant_types),
        scope=scope,
        token_endpoint_auth_method=auth_method,
        **extra,
    )
    db.session.commit()
    # Loaded again after the commit, so the client can be read outside its app context.
    db.session.refresh(made[0])
    return made


def make_initial_access_token(**options: Any) -> str:
    """An initial access token (RFC 7591), issued and committed as an admin's request would."""
    token = issue_initial_access_token(**options)
    db.session.commit()
    return token
