"""RFC 8628 section 6.1: user codes are easy to read and forgiving to type."""

from __future__ import annotations

import pytest

from authserver.oauth.device import USER_CODE_ALPHABET, format_user_code, normalize_user_code
from authserver.oauth.endpoints.device_authorization import DeviceAuthorizationEndpoint


@pytest.mark.parametrize(
    "typed",
    [
        "BCDF-GHJK",
        "bcdfghjk",
        " bcdf ghjk ",
        "bc-df-gh-jk",
        "BcDf\tGhJk",
        "BCDF\u2013GHJK",
    ],
)
def test_case_spaces_and_dashes_do_not_matter(typed: str) -> None:
    assert normalize_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize(
    "typed", ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK", "B" * 100, None]
)
def test_anything_else_is_not_a_user_code(typed: str | None) -> None:
    assert normalize_user_code(typed) is None


def test_codes_are_shown_in_two_groups_of_four() -> None:
    assert format_user_code("BCDFGHJK") == "BCDF-GHJK"


def test_generated_codes_use_only_consonants_and_read_back_as_themselves() -> None:
    endpoint = DeviceAuthorizationEndpoint(server=None)
    codes = {endpoint.generate_user_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        normalized = normalize_user_code(code)
        assert normalized is not None and set(normalized) <= set(USER_CODE_ALPHABET)
        assert format_user_code(normalized) == code
