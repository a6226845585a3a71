"""The capability registry: consistent with itself, and with the classes Authlib reads."""

from __future__ import annotations

import pytest

from authserver.core import capabilities
from authserver.oauth import server
from authserver.oauth.grants.refresh_token import RefreshTokenGrant


def test_supported_and_unsupported_never_overlap() -> None:
    pairs = [
        (capabilities.CLIENT_AUTH_METHODS, capabilities.UNSUPPORTED_CLIENT_AUTH_METHODS),
        (capabilities.GRANT_TYPES, capabilities.UNSUPPORTED_GRANT_TYPES),
        (capabilities.RESPONSE_TYPES, capabilities.UNSUPPORTED_RESPONSE_TYPES),
        (capabilities.RESPONSE_MODES, capabilities.UNSUPPORTED_RESPONSE_MODES),
        (capabilities.PROMPT_VALUES, capabilities.UNSUPPORTED_PROMPT_VALUES),
        (capabilities.CODE_CHALLENGE_METHODS, capabilities.UNSUPPORTED_CODE_CHALLENGE_METHODS),
    ]
    for supported, unsupported in pairs:
        assert not set(supported) & set(unsupported)


def test_endpoint_names_are_unique_and_each_has_one_rate_limit_class() -> None:
    names = [endpoint.name for endpoint in capabilities.ENDPOINTS]
    assert len(names) == len(set(names))
    assert not capabilities.PAGE_ENDPOINTS & capabilities.API_ENDPOINTS


def test_public_clients_are_kept_from_client_credentials() -> None:
    """RFC 6749 section 4.4: the client credentials grant is for confidential clients."""
    assert capabilities.NONE not in capabilities.auth_methods_for_grant("client_credentials")
    assert capabilities.NONE in capabilities.auth_methods_for_grant("authorization_code")
    assert capabilities.NONE not in capabilities.auth_methods("oauth.introspect")


def test_response_types_follow_the_grant_types() -> None:
    """RFC 7591 section 2.1: "code" goes with authorization_code, and only with it."""
    assert capabilities.response_types_for(["authorization_code", "refresh_token"]) == ["code"]
    assert capabilities.response_types_for(["client_credentials"]) == []


def test_authlib_classes_read_the_registry() -> None:
    for grant in server.GRANTS:
        expected = capabilities.auth_methods_for_grant(grant.GRANT_TYPE)
        assert tuple(grant.TOKEN_ENDPOINT_AUTH_METHODS) == expected
    for endpoint in server.AUTHLIB_ENDPOINTS:
        registered = capabilities.ENDPOINTS_BY_AUTHLIB_NAME[endpoint.ENDPOINT_NAME]
        assert tuple(endpoint.CLIENT_AUTH_METHODS) == registered.auth_methods
    server.check_grant_types()


def test_a_grant_type_the_registry_does_not_list_stops_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(RefreshTokenGrant, "GRANT_TYPE", "password")
    with pytest.raises(RuntimeError, match="password"):
        server.check_grant_types()
