"""Register and manage clients: validation of their metadata, secrets, look-ups.

Metadata names follow RFC 7591 (OAuth 2.0 Dynamic Client Registration). Every
rule is checked here, once, so the CLI, the admin console and any future
registration endpoint refuse the same things with the same messages. Every change
names its `actor` and goes through the privilege ceiling (`roles.ceiling`): a client
is never given, nor changed by, more than the actor holds.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from hashlib import sha256
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy import select

from ..accounts.models import Role
from ..accounts.services import get_user_by_sub
from ..core import capabilities
from ..extensions import db, precise_utcnow
from ..orgs.services import member_slugs
from ..roles import ceiling
from ..roles.ceiling import Actor
from ..roles.services import RoleError, find_roles
from .models import Client

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
# RFC 6749 section 3.3: scope-token = 1*NQCHAR; NQCHAR = %x21 / %x23-5B / %x5D-7E
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# RFC 3986 section 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
MAX_URI_LENGTH = 2000


class ClientError(ValueError):
    """Client metadata was refused; the message says which value and why."""


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a client secret (high-entropy, so a fast hash is right)."""
    return sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_client(
    *,
    actor: Actor,
    name: str,
    redirect_uris: Iterable[str] = (),
    post_logout_redirect_uris: Iterable[str] = (),
    grant_types: Iterable[str],
    scope: str,
    token_endpoint_auth_method: str,
    resources: Iterable[str] = (),
    web_origins: Iterable[str] = (),
    skip_consent: bool = False,
    id_token_signed_response_alg: str | None = None,
    roles: Iterable[str] = (),
    is_resource_server: bool = False,
) -> tuple[Client, str | None]:
    """Validate the metadata and register a client; returns it and its secret (None if public).

    Its roles, first-party status and own-token scopes must lie within what the actor
    could hold itself (roles.ceiling; PrivilegeError otherwise).
    """
    name = _check_name(name)
    grants = _check_grant_types(grant_types)
    auth_method = _check_auth_method(token_endpoint_auth_method, grants)
    redirects = _check_redirect_uris(redirect_uris, "redirect_uri")
    if "authorization_code" in grants and not redirects:
        raise ClientError("the authorization_code grant needs at least one redirect URI")
    checked_scope = _check_scope(scope)
    held = _check_roles(roles)
    require_may_hold(actor, held, bool(skip_consent), grants, checked_scope)
    client = Client(
        client_id=new_client_id(),
        name=name,
        redirect_uris=redirects,
        post_logout_redirect_uris=_check_redirect_uris(
            post_logout_redirect_uris, "post_logout_redirect_uri"
        ),
        grant_types=grants,
        response_types=capabilities.response_types_for(grants),
        scope=checked_scope,
        token_endpoint_auth_method=auth_method,
        id_token_signed_response_alg=_check_id_token_alg(id_token_signed_response_alg),
        resources=_check_resources(resources),
        web_origins=_check_web_origins(web_origins),
        skip_consent=bool(skip_consent),
        is_resource_server=bool(is_resource_server),
    )
    client.roles = held
    secret = None if auth_method == capabilities.NONE else secrets.token_urlsafe(32)
    client.client_secret_hash = None if secret is None else hash_secret(secret)
    db.session.add(client)
    db.session.commit()
    _changed(client)
    logger.info("client registered: client_id=%s name=%r", client.client_id, client.name)
    return client, secret


def update_client(
    client: Client,
    *,
    actor: Actor,
    name: str | None = None,
    redirect_uris: Iterable[str] | None = None,
    post_logout_redirect_uris: Iterable[str] | None = None,
    grant_types: Iterable[str] | None = None,
    scope: str | None = None,
    skip_consent: bool | None = None,
    web_origins: Iterable[str] | None = None,
    resources: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
    is_resource_server: bool | None = None,
) -> list[str]:
    """Change the given metadata (None = keep) by the rules of `create_client`; returns the
    names of the fields that changed. The caller commits (and drops the cached snapshot).

    The actor must hold the client as it is and as it will be (PrivilegeError).
    """
    require_may_manage(actor, client)
    grants = _check_grant_types(grant_types if grant_types is not None else client.grant_types)
    _check_auth_method(client.token_endpoint_auth_method, grants)
    redirects = _check_redirect_uris(
        redirect_uris if redirect_uris is not None else client.redirect_uris, "redirect_uri"
    )
    if "authorization_code" in grants and not redirects:
        raise ClientError("the authorization_code grant needs at least one redirect URI")
    changes: dict[str, Any] = {
        "grant_types": grants,
        "response_types": capabilities.response_types_for(grants),
        "redirect_uris": redirects,
        "scope": _check_scope(scope) if scope is not None else client.scope,
        "skip_consent": client.skip_consent if skip_consent is None else bool(skip_consent),
    }
    if name is not None:
        changes["name"] = _check_name(name)
    if post_logout_redirect_uris is not None:
        changes["post_logout_redirect_uris"] = _check_redirect_uris(
            post_logout_redirect_uris, "post_logout_redirect_uri"
        )
    if web_origins is not None:
        changes["web_origins"] = _check_web_origins(web_origins)
    if resources is not None:
        changes["resources"] = _check_resources(resources)
    if is_resource_server is not None:
        changes["is_resource_server"] = bool(is_resource_server)
    held = _check_roles(roles) if roles is not None else list(client.roles)
    require_may_hold(actor, held, changes["skip_consent"], grants, changes["scope"])
    changed = sorted(key for key, value in changes.items() if getattr(client, key) != value)
    for key in changed:
        setattr(client, key, changes[key])
    if {role.name for role in held} != set(client.role_names):
        client.roles = held
        changed.append("roles")
    return changed


def rotate_secret(client: Client, *, actor: Actor) -> str:
    """Give a confidential client a new secret; the old one, and every access token issued
    before now (`tokens_not_before`), stop working at once."""
    require_may_manage(actor, client)
    if client.token_endpoint_auth_method == capabilities.NONE:
        raise ClientError("a public client (token_endpoint_auth_method none) has no secret")
    secret = secrets.token_urlsafe(32)
    client.client_secret_hash = hash_secret(secret)
    client.tokens_not_before = precise_utcnow()
    db.session.commit()
    _changed(client)
    logger.info("client secret rotated: client_id=%s", client.client_id)
    return secret


def require_may_manage(actor: Actor, client: Client) -> None:
    """Any write to an existing client needs all it holds (roles.ceiling); PrivilegeError."""
    grants, scope = list(client.grant_types or []), client.scope or ""
    ceiling.require_may_manage_client(actor, client, _memberships(actor, grants, scope))


def require_may_hold(
    actor: Actor, roles: list[Role], skip_consent: bool, grant_types: list[str], scope: str
) -> None:
    """A client with these roles, first-party status and own-token scopes lies within the actor."""
    ceiling.require_may_hold_client(
        actor,
        _memberships(actor, grant_types, scope),
        roles=roles,
        skip_consent=skip_consent,
        grant_types=grant_types,
        scope=scope,
    )


def _memberships(actor: Actor, grant_types: list[str], scope: str) -> frozenset[str]:
    """The slugs of a person actor's organizations, read only when the decision needs them."""
    if actor.type != "user" or not actor.id:
        return frozenset()
    if not ceiling.needs_memberships(actor, grant_types, scope):
        return frozenset()
    user = get_user_by_sub(actor.id)
    return frozenset(member_slugs(user)) if user is not None else frozenset()


def _check_roles(names: Iterable[str]) -> list[Role]:
    """The existing roles with these names (a client holds roles as a person does)."""
    try:
        return find_roles(names)
    except RoleError as exc:
        raise ClientError(str(exc)) from None


def list_clients() -> list[Client]:
    """Every registered client, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.id)))


def get_client(client_id: str) -> Client | None:
    """The client with this client_id, active or not."""
    return db.session.scalar(select(Client).where(Client.client_id == client_id))


def client_metadata(client: Client) -> dict[str, Any]:
    """RFC 7591 section 3.2.1: the registered metadata, without any secret."""
    metadata: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.name,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "scope": client.scope,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "resources": list(client.resources),
        "web_origins": list(client.web_origins),
        "skip_consent": client.skip_consent,
        "is_active": client.is_active,
        "roles": client.role_names,
        # RFC 7662 section 4: may introspect access tokens issued to other clients.
        "is_resource_server": client.is_resource_server,
    }
    if client.id_token_signed_response_alg:
        metadata["id_token_signed_response_alg"] = client.id_token_signed_response_alg
    return metadata


def new_client_id() -> str:
    """A random client_id that never starts with "-", so command lines do not take it for a flag."""
    while True:
        client_id = secrets.token_urlsafe(18)
        if not client_id.startswith("-"):
            return client_id


def _changed(client: Client) -> None:
    """Drop the cached snapshot of a client after any change."""
    from .cache import invalidate_client_cache

    invalidate_client_cache(client.client_id)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ClientError("client_name must not be empty")
    if len(name) > 200:
        raise ClientError("client_name must be at most 200 characters")
    return name


def _check_grant_types(grant_types: Iterable[str]) -> list[str]:
    grants = _unique(grant_types)
    if not grants:
        raise ClientError("at least one grant_type is required")
    for grant in grants:
        if grant not in capabilities.GRANT_TYPES:
            raise ClientError(
                f"unsupported grant_type {grant!r}; "
                f"expected one of {', '.join(capabilities.GRANT_TYPES)}"
            )
    return grants


def _check_auth_method(method: str, grants: list[str]) -> str:
    """RFC 7591 section 2: a public client ("none") cannot use client_credentials."""
    if method not in capabilities.CLIENT_AUTH_METHODS:
        raise ClientError(
            f"unsupported token_endpoint_auth_method {method!r}; "
            f"expected one of {', '.join(capabilities.CLIENT_AUTH_METHODS)}"
        )
    for grant in grants:
        if method not in capabilities.auth_methods_for_grant(grant):
            raise ClientError(
                f"a public client (token_endpoint_auth_method {method}) cannot use {grant}"
            )
    return method


def _check_redirect_uris(uris: Iterable[str], label: str) -> list[str]:
    """RFC 9700 section 2.1 and RFC 8252 sections 7.1 and 7.3: where codes may be sent."""
    checked = _unique(uris)
    for uri in checked:
        _check_redirect_uri(uri, label)
    return checked


def _check_redirect_uri(uri: str, label: str) -> None:
    """One redirect URI: absolute, no fragment; https, loopback http or a native-app scheme."""
    parts = _split_absolute(uri, label)
    if parts.fragment or "#" in uri:
        raise ClientError(f"{label} {uri!r} must not contain a fragment (RFC 6749 section 3.1.2)")
    scheme = parts.scheme.lower()
    if scheme in ("https", "http"):
        if not parts.hostname:
            raise ClientError(f"{label} {uri!r} has no host")
        if parts.username is not None or parts.password is not None:
            raise ClientError(f"{label} {uri!r} must not contain user information")
        if scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ClientError(
                f"{label} {uri!r} must use https; plain http is allowed only on a loopback "
                "host (127.0.0.1, [::1], localhost; RFC 8252 section 7.3)"
            )
        return
    if "." not in scheme:
        raise ClientError(
            f"{label} {uri!r}: the scheme must be https, http on loopback, or a private-use "
            "scheme in reverse domain name form such as com.example.app (RFC 8252 section 7.1)"
        )


def _check_scope(scope: str) -> str:
    """RFC 6749 section 3.3: space-delimited scope tokens of NQCHAR, each given once."""
    tokens = (scope or "").split(" ")
    tokens = [token for token in tokens if token]
    seen: set[str] = set()
    for token in tokens:
        if not SCOPE_TOKEN.fullmatch(token):
            raise ClientError(
                f"scope value {token!r} is invalid: only printable ASCII except '\"' and '\\' "
                "(RFC 6749 section 3.3)"
            )
        if token in seen:
            raise ClientError(f"scope value {token!r} is given twice")
        seen.add(token)
    return " ".join(tokens)


def _check_resources(resources: Iterable[str]) -> list[str]:
    """RFC 8707 section 2: resource indicators are absolute URIs without a fragment."""
    checked = _unique(resources)
    for uri in checked:
        parts = _split_absolute(uri, "resource")
        if parts.fragment or "#" in uri:
            raise ClientError(f"resource {uri!r} must not contain a fragment (RFC 8707)")
    return checked


def _check_web_origins(origins: Iterable[str]) -> list[str]:
    """Origins (RFC 6454) are scheme://host[:port] and nothing else."""
    checked = _unique(origins)
    for origin in checked:
        parts = _split_absolute(origin, "web_origin")
        try:
            parts.port  # noqa: B018 - raises ValueError on an invalid port
        except ValueError:
            raise ClientError(f"web_origin {origin!r} has an invalid port") from None
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or "@" in parts.netloc
            or origin.endswith(("?", "#"))
        ):
            raise ClientError(f"web_origin {origin!r} must be scheme://host[:port], no path")
    return _unique(_serialize_origin(urlsplit(origin)) for origin in checked)


def _serialize_origin(parts: SplitResult) -> str:
    """RFC 6454 section 6.2: lower-case scheme and host, default port omitted, as browsers send."""
    default_port = {"http": 80, "https": 443}[parts.scheme]
    host = parts.netloc.rsplit(":", 1)[0] if parts.port is not None else parts.netloc
    port = "" if parts.port in (None, default_port) else f":{parts.port}"
    return f"{parts.scheme}://{host.lower()}{port}"


def _check_id_token_alg(alg: str | None) -> str | None:
    """OpenID Connect Registration section 2: id_token_signed_response_alg, never none."""
    if alg is None or alg == "":
        return None
    if alg not in capabilities.ID_TOKEN_SIGNING_ALGS:
        raise ClientError(
            f"unsupported id_token_signed_response_alg {alg!r}; "
            f"expected one of {', '.join(capabilities.ID_TOKEN_SIGNING_ALGS)}"
        )
    return alg


def _split_absolute(uri: str, label: str) -> SplitResult:
    """Split an absolute URI (RFC 3986 section 4.3), refusing spaces and control characters."""
    if not isinstance(uri, str) or not uri:
        raise ClientError(f"{label} must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise ClientError(f"{label} must be at most {MAX_URI_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        raise ClientError(f"{label} {uri!r} must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ClientError(f"{label} {uri!r} is not a valid URI: {exc}") from None
    if not parts.scheme or not URI_SCHEME.fullmatch(parts.scheme) or ":" not in uri:
        raise ClientError(f"{label} {uri!r} must be an absolute URI")
    if not (parts.netloc or parts.path):
        raise ClientError(f"{label} {uri!r} must be an absolute URI")
    return parts


def _unique(values: Iterable[str]) -> list[str]:
    """The values in order, each once."""
    seen: list[str] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen
