"""Subject types and sectors of clients (OIDC Core 8.1, OIDC Registration 2 and 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask

from authserver.clients.metadata import ClientError
from authserver.clients.models import Client
from authserver.clients.sector import sector_identifier
from authserver.clients.services import create_client, update_client
from authserver.roles.ceiling import SYSTEM
from tests.fetch_servers import Certificate, certificate, json_document, serve

WEB = "https://shop.example.com/callback"
MOBILE = "https://m.shop.example.com/callback"
NATIVE = "com.example.shop:/cb"


def metadata(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Shop",
        "redirect_uris": [WEB],
        "grant_types": ["authorization_code"],
        "scope": "openid",
        "token_endpoint_auth_method": "client_secret_basic",
    }
    values.update(changes)
    return values


def register(**changes: Any) -> Client:
    client, _ = create_client(actor=SYSTEM, **metadata(**changes))
    return client


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def fetching_app(app_factory: Any, tls: Certificate) -> Iterator[Flask]:
    """An app that trusts the loopback HTTPS server holding sector documents."""
    app = app_factory(fetch_allow_private_addresses=True, fetch_ca_file=tls.cert_file)
    with app.app_context():
        yield app


def document_server(tls: Certificate, uris: list[str]) -> Any:
    return serve(json_document(json.dumps(uris).encode()), tls=tls)


def test_the_sector_of_a_pairwise_client_is_its_one_redirect_host() -> None:
    assert sector_identifier("pairwise", None, [WEB, WEB + "2"]) == "shop.example.com"
    assert sector_identifier("public", None, [WEB, MOBILE]) is None


def test_the_sector_uri_host_wins_over_the_redirect_hosts() -> None:
    uri = "https://Sector.Example.com:8443/sector.json"
    assert sector_identifier("pairwise", uri, [WEB, MOBILE]) == "sector.example.com"


@pytest.mark.parametrize("redirect_uris", [[WEB, MOBILE], [WEB, NATIVE], [NATIVE], []], ids=str)
def test_a_pairwise_client_without_one_redirect_host_needs_a_sector_uri(
    app: Flask, redirect_uris: list[str]
) -> None:
    grants = (
        ["authorization_code"]
        if redirect_uris
        else ["urn:ietf:params:oauth:grant-type:device_code"]
    )
    with pytest.raises(ClientError, match="needs a sector_identifier_uri"):
        register(redirect_uris=redirect_uris, grant_types=grants, subject_type="pairwise")


def test_the_server_default_subject_type_applies_to_new_clients(app_factory: Any) -> None:
    app = app_factory(default_subject_type="pairwise")
    with app.app_context():
        assert register().subject_type == "pairwise"
        assert register(subject_type="public").subject_type == "public"


def test_an_unknown_subject_type_is_refused(app: Flask) -> None:
    with pytest.raises(ClientError, match="unsupported subject_type 'ephemeral'"):
        register(subject_type="ephemeral")


def test_pairwise_is_refused_without_a_pairwise_secret(app: Flask) -> None:
    """Production without AUTHSERVER_PAIRWISE_SECRET: only public subjects are offered."""
    app.config["AUTHSERVER"] = replace(app.config["AUTHSERVER"], pairwise_secret="")
    with pytest.raises(ClientError, match=r"expected one of public$"):
        register(subject_type="pairwise")


def test_a_sector_uri_listing_every_redirect_uri_is_accepted(
    fetching_app: Flask, tls: Certificate
) -> None:
    with document_server(tls, [WEB, MOBILE, NATIVE]) as url:
        client = register(
            redirect_uris=[MOBILE, NATIVE],
            subject_type="pairwise",
            sector_identifier_uri=url + "/sector.json",
        )
    assert client.subject_type == "pairwise"
    assert client.sector_identifier_uri == url + "/sector.json"


def test_a_sector_uri_missing_a_redirect_uri_is_refused(
    fetching_app: Flask, tls: Certificate
) -> None:
    with (
        document_server(tls, [WEB]) as url,
        pytest.raises(ClientError, match=f"does not list the redirect_uri '{MOBILE}'"),
    ):
        register(
            redirect_uris=[WEB, MOBILE],
            subject_type="pairwise",
            sector_identifier_uri=url + "/sector.json",
        )


def test_a_sector_document_that_is_not_an_array_of_strings_is_refused(
    fetching_app: Flask, tls: Certificate
) -> None:
    with (
        serve(json_document(b'{"redirect_uris": []}'), tls=tls) as url,
        pytest.raises(ClientError, match="must hold a JSON array"),
    ):
        register(subject_type="pairwise", sector_identifier_uri=url)


def test_a_plain_http_sector_uri_is_refused(fetching_app: Flask) -> None:
    with pytest.raises(ClientError, match="must be an https URL"):
        register(subject_type="pairwise", sector_identifier_uri="http://shop.example.com/s.json")


def test_a_sector_uri_on_a_private_address_is_refused_unless_allowed(
    app_factory: Any, tls: Certificate
) -> None:
    app = app_factory(fetch_allow_private_addresses=False, fetch_ca_file=tls.cert_file)
    with (
        app.app_context(),
        document_server(tls, [WEB]) as url,
        pytest.raises(ClientError, match="non-public address"),
    ):
        register(subject_type="pairwise", sector_identifier_uri=url)


def test_changing_the_redirect_uris_fetches_the_sector_document_again(
    fetching_app: Flask, tls: Certificate
) -> None:
    with document_server(tls, [WEB, MOBILE]) as url:
        client = register(subject_type="pairwise", sector_identifier_uri=url)
        update_client(client, actor=SYSTEM, redirect_uris=[WEB, MOBILE])
    # The document's server is gone: an unrelated change does not need it ...
    update_client(client, actor=SYSTEM, name="Shop, renamed")
    assert client.name == "Shop, renamed"
    # ... a change of redirect URIs does.
    with pytest.raises(ClientError, match="could not be used"):
        update_client(client, actor=SYSTEM, redirect_uris=[WEB])


def test_a_client_can_become_pairwise_and_back(app: Flask) -> None:
    client = register()
    assert client.subject_type == "public"
    assert update_client(client, actor=SYSTEM, subject_type="pairwise") == ["subject_type"]
    assert client.subject_type == "pairwise"
    update_client(client, actor=SYSTEM, subject_type="public")
    assert client.subject_type == "public"
