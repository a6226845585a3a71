"""The `next` parameter of the sign-in page never leaves this server."""

from __future__ import annotations

import pytest

from authserver.accounts.views import safe_next


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/authorize?client_id=abc&redirect_uri=https%3A%2F%2Frp.example.com%2Fcb",
        "/logout",
        "/a/b?c=d#e",
    ],
)
def test_local_paths_are_kept(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.com",
        "//evil.com/path",
        "https://evil.com",
        "http://evil.com/",
        "javascript:alert(1)",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "/\n/evil.com",
        "evil.com",
        "///evil.com",
        "/" + "a" * 9000,
    ],
)
def test_anything_else_becomes_the_home_page(target: str | None) -> None:
    assert safe_next(target) == "/"
