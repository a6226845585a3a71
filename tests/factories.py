"""Factories for the things tests need: people and clients, made through the services."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authserver.accounts.models import User
from authserver.accounts.services import create_user
from authserver.clients.models import Client
from authserver.clients.services import create_client
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
    return create_user(
        email, password=password, name=name, roles=list(roles), email_verified=email_verified
    )


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
    return create_client(
        name=name,
        redirect_uris=list(redirect_uris),
        grant_types=list(grant_types),
        scope=scope,
        token_endpoint_auth_method=auth_method,
        **extra,
    )
