"""The admin API's clients: list, register, read, change, delete, rotate the secret; and
initial access tokens for dynamic registration (RFC 7591 section 3)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from ...clients.initial_access import issue_initial_access_token as issue
from ...clients.models import Client
from ...clients.services import get_client as find_client
from ...clients.services import list_clients as all_clients
from ..api_schemas import (
    boolean,
    integer,
    json_body,
    only,
    page,
    page_args,
    strings,
    text,
)
from ..serializers import serialize_client
from ..services import clients as services
from .base import actor, bp, needs, not_found

# OpenID Connect Back-Channel and Front-Channel Logout 1.0 client metadata (section 2).
LOGOUT_FIELDS = (
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "frontchannel_logout_uri",
    "frontchannel_logout_session_required",
)
CLIENT_FIELDS = (
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "scope",
    "resources",
    "web_origins",
    "skip_consent",
    "roles",
    "is_resource_server",
    "claims_in_id_token",
    "refresh_token_grace_period_seconds",
    "subject_type",
    "sector_identifier_uri",
    *LOGOUT_FIELDS,
)

GRACE = "refresh_token_grace_period_seconds"


@bp.get("/clients")
@needs("clients:read")
def list_clients() -> Response:
    limit, offset = page_args()
    clients = all_clients()
    window = clients[offset : offset + limit]
    return jsonify(page([serialize_client(c) for c in window], len(clients), limit, offset))


@bp.post("/clients")
@needs("clients:write")
def create_client() -> tuple[Response, int, dict[str, str]]:
    allowed = (*CLIENT_FIELDS, "token_endpoint_auth_method", "id_token_signed_response_alg")
    data = only(json_body(), allowed)
    client, secret = services.create_client_as_admin(
        actor=actor(),
        name=text(data, "client_name", required=True) or "",
        redirect_uris=strings(data, "redirect_uris") or [],
        post_logout_redirect_uris=strings(data, "post_logout_redirect_uris") or [],
        grant_types=strings(data, "grant_types") or ["authorization_code", "refresh_token"],
        scope=text(data, "scope") or "openid",
        token_endpoint_auth_method=(
            text(data, "token_endpoint_auth_method") or "client_secret_basic"
        ),
        resources=strings(data, "resources") or [],
        web_origins=strings(data, "web_origins") or [],
        skip_consent=bool(boolean(data, "skip_consent")),
        id_token_signed_response_alg=text(data, "id_token_signed_response_alg"),
        roles=strings(data, "roles") or [],
        is_resource_server=bool(boolean(data, "is_resource_server")),
        claims_in_id_token=bool(boolean(data, "claims_in_id_token")),
        refresh_token_grace_period_seconds=integer(data, GRACE) or 0,
        subject_type=text(data, "subject_type"),
        sector_identifier_uri=text(data, "sector_identifier_uri"),
        **_logout_metadata(data),
    )
    body = serialize_client(client)
    if secret is not None:
        body["client_secret"] = secret  # shown this once; only its hash is stored
    location = f"{bp.url_prefix}/clients/{client.client_id}"
    return jsonify(body), 201, {"Location": location}


@bp.get("/clients/<client_id>")
@needs("clients:read")
def get_client(client_id: str) -> Response:
    return jsonify(serialize_client(_client(client_id)))


@bp.patch("/clients/<client_id>")
@needs("clients:write")
def update_client(client_id: str) -> Response:
    client = _client(client_id)
    data = only(json_body(), (*CLIENT_FIELDS, "is_active"))
    active = boolean(data, "is_active")
    if set(data) - {"is_active"}:
        services.update_client(
            client,
            name=text(data, "client_name"),
            redirect_uris=strings(data, "redirect_uris"),
            post_logout_redirect_uris=strings(data, "post_logout_redirect_uris"),
            grant_types=strings(data, "grant_types"),
            scope=text(data, "scope"),
            skip_consent=boolean(data, "skip_consent"),
            web_origins=strings(data, "web_origins"),
            resources=strings(data, "resources"),
            roles=strings(data, "roles"),
            is_resource_server=boolean(data, "is_resource_server"),
            claims_in_id_token=boolean(data, "claims_in_id_token"),
            refresh_token_grace_period_seconds=integer(data, GRACE),
            subject_type=text(data, "subject_type"),
            sector_identifier_uri=text(data, "sector_identifier_uri"),
            actor=actor(),
            **_logout_metadata(data),
        )
    if active is not None and active != client.is_active:
        services.set_client_active(client, active, actor=actor())
    return jsonify(serialize_client(client))


@bp.delete("/clients/<client_id>")
@needs("clients:write")
def delete_client(client_id: str) -> tuple[str, int]:
    services.delete_client(_client(client_id), actor=actor())
    return "", 204


@bp.post("/clients/<client_id>/secret")
@needs("clients:write")
def rotate_client_secret(client_id: str) -> Response:
    client = _client(client_id)
    secret = services.rotate_client_secret(client, actor=actor())
    return jsonify(client_id=client.client_id, client_secret=secret)


def _logout_metadata(data: dict[str, Any]) -> dict[str, Any]:
    """The logout metadata given (a URI of "" or null removes it; absent keeps it)."""
    return {
        "backchannel_logout_uri": _uri(data, "backchannel_logout_uri"),
        "backchannel_logout_session_required": boolean(data, "backchannel_logout_session_required"),
        "frontchannel_logout_uri": _uri(data, "frontchannel_logout_uri"),
        "frontchannel_logout_session_required": boolean(
            data, "frontchannel_logout_session_required"
        ),
    }


def _uri(data: dict[str, Any], name: str) -> str | None:
    """A URI member: JSON null removes the URI ("" does too), absent keeps it."""
    if name in data and data[name] is None:
        return ""
    return text(data, name)


def _client(client_id: str) -> Client:
    client = find_client(client_id)
    if client is None:
        raise not_found("client")
    return client


@bp.post("/initial-access-tokens")
@needs("clients:write")
def issue_initial_access_token() -> tuple[Response, int]:
    """RFC 7591 section 3: a single-use token allowing one dynamic registration, shown once."""
    data = only(json_body(), ("note",)) if request.content_length else {}
    note = (text(data, "note") or "")[:200]
    token = issue(note=note, created_by=actor().id)
    return jsonify(initial_access_token=token, note=note), 201
