"""Plain words for scopes on the consent page."""

from __future__ import annotations

from authserver.accounts.scopes import describe_scope, describe_scopes


def test_standard_scopes_have_plain_words() -> None:
    for scope in ("openid", "profile", "email", "address", "phone", "offline_access"):
        assert describe_scope(scope) != scope


def test_other_scopes_are_shown_by_name() -> None:
    assert describe_scopes(["email", "api:read"]) == [
        ("email", "See your e-mail address"),
        ("api:read", "api:read"),
    ]
