"""`authserver clients`: register relying parties and services."""

from __future__ import annotations

import json
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup

from ..admin.services.base import AdminError
from ..admin.services.clients import (
    create_client_as_admin,
    delete_client,
    rotate_client_secret,
    set_client_active,
    update_client,
)
from ..clients.initial_access import issue_initial_access_token
from ..clients.metadata import MAX_REFRESH_TOKEN_GRACE_PERIOD
from ..clients.redirect_uris import loopback_advice
from ..clients.services import client_metadata, list_clients
from ..core.capabilities import CLIENT_AUTH_METHODS, GRANT_TYPES, SIGNING_ALGS, SUBJECT_TYPES
from .lookup import cli_actor, fail, find_client

clients_cli = AppGroup("clients", help="Manage OAuth clients.")
GRACE_PERIOD_HELP = (
    "Seconds after a refresh token's rotation during which presenting it again returns "
    f"new tokens instead of revoking the family; 0 (no grace) to {MAX_REFRESH_TOKEN_GRACE_PERIOD}."
)


@clients_cli.command("create")
@click.option("--name", required=True, help="Shown to people on the consent page.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="Repeatable.")
@click.option(
    "--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True, help="Repeatable."
)
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    required=True,
    type=click.Choice(GRANT_TYPES),
    help="Repeatable.",
)
@click.option(
    "--scope", required=True, help='Space-separated, e.g. "openid profile email offline_access".'
)
@click.option("--auth-method", required=True, type=click.Choice(CLIENT_AUTH_METHODS))
@click.option(
    "--resource", "resources", multiple=True, help="RFC 8707 audience it may ask for; repeatable."
)
@click.option(
    "--web-origin", "web_origins", multiple=True, help="Browser origin for CORS; repeatable."
)
@click.option("--skip-consent", is_flag=True, help="First-party client: no consent page.")
@click.option("--id-token-alg", type=click.Choice(SIGNING_ALGS), default=None)
@click.option(
    "--role",
    "roles",
    multiple=True,
    help="A role the client holds (what its tokens may do at the admin API); repeatable.",
)
@click.option(
    "--resource-server",
    is_flag=True,
    help="May introspect access tokens issued to other clients (RFC 7662).",
)
@click.option(
    "--claims-in-id-token",
    is_flag=True,
    help="Put the profile and e-mail claims of the granted scopes in the id_token too, "
    "not only at userinfo (for apps that read only the id_token).",
)
@click.option(
    "--refresh-token-grace-period",
    "grace_period",
    type=int,
    default=0,
    show_default=True,
    help=GRACE_PERIOD_HELP,
)
@click.option(
    "--subject-type",
    type=click.Choice(SUBJECT_TYPES),
    default=None,
    help="The sub it receives (OIDC Core 8); default AUTHSERVER_DEFAULT_SUBJECT_TYPE.",
)
@click.option(
    "--sector-identifier-uri",
    default=None,
    help="https URL of a JSON array of its redirect URIs; its host is the pairwise sector.",
)
@click.option(
    "--backchannel-logout-uri",
    default=None,
    help="Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0).",
)
@click.option("--backchannel-logout-session-required", is_flag=True, help="The client needs sid.")
@click.option(
    "--frontchannel-logout-uri",
    default=None,
    help="Loaded in an iframe on sign-out (OpenID Connect Front-Channel Logout 1.0).",
)
@click.option(
    "--frontchannel-logout-session-required",
    is_flag=True,
    help="Add iss and sid to the front-channel logout URI.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def create_client_command(
    name: str,
    redirect_uris: tuple[str, ...],
    post_logout_redirect_uris: tuple[str, ...],
    grant_types: tuple[str, ...],
    scope: str,
    auth_method: str,
    resources: tuple[str, ...],
    web_origins: tuple[str, ...],
    skip_consent: bool,
    id_token_alg: str | None,
    roles: tuple[str, ...],
    resource_server: bool,
    grace_period: int,
    as_json: bool,
    **options: Any,
) -> None:
    """Register a client; a confidential client's secret is shown only this once.

    `options`: the options named as clients.services.ClientOptions names them.
    """

    try:
        client, secret = create_client_as_admin(
            actor=cli_actor(),
            name=name,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            grant_types=grant_types,
            scope=scope,
            token_endpoint_auth_method=auth_method,
            resources=resources,
            web_origins=web_origins,
            skip_consent=skip_consent,
            id_token_signed_response_alg=id_token_alg,
            roles=roles,
            is_resource_server=resource_server,
            refresh_token_grace_period_seconds=grace_period,
            **options,
        )
    except AdminError as exc:
        fail(str(exc))
    registered = _with_secret(client_metadata(client), secret)
    for advice in loopback_advice(registered.get("redirect_uris", [])):
        click.echo(f"Warning: {advice}", err=True)
    if as_json:
        click.echo(json.dumps(registered, indent=2))
        return
    _print_summary(registered)


def _with_secret(metadata: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """RFC 7591 section 3.2.1 order: client_id, then the secret, then the metadata."""
    registered: dict[str, Any] = {"client_id": metadata["client_id"]}
    if secret is not None:
        registered["client_secret"] = secret
        registered["client_secret_expires_at"] = 0
    registered.update(metadata)
    return registered


def _print_summary(registered: dict[str, Any]) -> None:
    """A readable summary for a person at a terminal."""
    click.echo(f"Created client {registered['client_name']!r}.")
    for key, value in registered.items():
        if key in ("client_name", "client_secret_expires_at"):
            continue
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"  {key + ':':<30} {'-' if shown in ('', None) else shown}")
    if "client_secret" in registered:
        click.echo(
            "\nThe client_secret is shown only this once; only its hash is stored. Keep it now.",
        )


@clients_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array on stdout.")
def list_clients_command(as_json: bool) -> None:
    """List registered clients (never their secrets)."""
    clients = [client_metadata(client) for client in list_clients()]
    if as_json:
        click.echo(json.dumps(clients, indent=2))
        return
    if not clients:
        click.echo("No clients yet. Create one with `authserver clients create --help`.")
        return
    click.echo(f"{'client_id':<26} {'auth method':<20} {'grant types':<40} name")
    for meta in clients:
        grants = ",".join(meta["grant_types"])
        inactive = "" if meta["is_active"] else "  (inactive)"
        click.echo(
            f"{meta['client_id']:<26} {meta['token_endpoint_auth_method']:<20} "
            f"{grants:<40} {meta['client_name']}{inactive}"
        )


@clients_cli.command("initial-token")
@click.option("--note", default="", help="Who or what the token is for; kept in the log.")
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    default=24 * 60 * 60,
    show_default=True,
    help="Seconds until the token expires.",
)
def initial_token_command(note: str, ttl: int) -> None:
    """Issue a single-use initial access token for dynamic registration (RFC 7591)."""

    token = issue_initial_access_token(note=note, ttl=ttl)
    click.echo(token)
    if not current_app.config["AUTHSERVER"].dynamic_registration:
        click.echo(
            "Note: dynamic registration is off; set AUTHSERVER_DYNAMIC_REGISTRATION=true "
            "to enable POST /oauth2/register.",
            err=True,
        )
    click.echo(
        "The token is shown only this once and allows one registration at POST /oauth2/register.",
        err=True,
    )


@clients_cli.command("show")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show_client_command(client_id: str, as_json: bool) -> None:
    """Show a client's registered metadata (never its secret)."""
    metadata = client_metadata(find_client(client_id))
    if as_json:
        click.echo(json.dumps(metadata, indent=2))
        return
    for key, value in metadata.items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key + ':':<32} {'-' if shown in ('', None) else shown}")


@clients_cli.command("update")
@click.argument("client_id")
@click.option("--subject-type", type=click.Choice(SUBJECT_TYPES), default=None)
@click.option(
    "--sector-identifier-uri", default=None, help='https URL (fetched again), or "" to remove.'
)
@click.option(
    "--refresh-token-grace-period", "grace_period", type=int, default=None, help=GRACE_PERIOD_HELP
)
@click.option("--backchannel-logout-uri", default=None, help='"" removes it.')
@click.option(
    "--backchannel-logout-session-required/--no-backchannel-logout-session-required",
    default=None,
)
@click.option("--frontchannel-logout-uri", default=None, help='"" removes it.')
@click.option(
    "--frontchannel-logout-session-required/--no-frontchannel-logout-session-required",
    default=None,
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def update_client_command(
    client_id: str, grace_period: int | None, as_json: bool, **changes: Any
) -> None:
    """Change a client's metadata; options left out keep their value.

    A new subject type or sector changes every `sub` the client receives (OIDC Core 8).
    """
    client = find_client(client_id)
    try:
        update_client(
            client, actor=cli_actor(), refresh_token_grace_period_seconds=grace_period, **changes
        )
    except AdminError as exc:
        fail(str(exc))
    metadata = client_metadata(client)
    if as_json:
        click.echo(json.dumps(metadata, indent=2))
        return
    click.echo(f"Updated client {client.client_id} ({client.name}).")


@clients_cli.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def rotate_secret_command(client_id: str, as_json: bool) -> None:
    """Give a confidential client a new secret, shown only this once; the old one stops working."""

    client = find_client(client_id)
    try:
        secret = rotate_client_secret(client, actor=cli_actor())
    except AdminError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))
        return
    click.echo(f"New client_secret for {client.client_id}:\n{secret}")
    click.echo("It is shown only this once; only its hash is stored.", err=True)


@clients_cli.command("disable")
@click.argument("client_id")
def disable_client_command(client_id: str) -> None:
    """Disable a client: it gets no more tokens and its grants are revoked."""

    client = find_client(client_id)
    set_client_active(client, False, actor=cli_actor())
    click.echo(f"Disabled client {client.client_id} ({client.name}); its tokens were revoked.")


@clients_cli.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_client_command(client_id: str, yes: bool) -> None:
    """Delete a client with its grants, codes and consents (asks first unless --yes)."""

    client = find_client(client_id)
    name = client.name
    if not yes:
        click.confirm(f"Delete client {client_id} ({name}) and revoke its tokens?", abort=True)
    delete_client(client, actor=cli_actor())
    click.echo(f"Deleted client {client_id} ({name}).")
