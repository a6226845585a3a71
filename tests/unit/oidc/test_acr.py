"""Which sign-in level a request asks for: `acr_values` and the `acr` claim request."""

from __future__ import annotations

from typing import Any

import pytest

from authserver.oidc.acr import UnmeetableAcr, required_acr, satisfies


def essential(**spec: Any) -> dict[str, Any]:
    return {"id_token": {"acr": {"essential": True, **spec}}}


@pytest.mark.parametrize(
    ("acr_values", "claims", "required"),
    [
        (None, None, None),
        ("", None, None),
        ("2", None, "2"),
        ("1", None, "1"),
        ("2 1", None, "1"),  # the lowest acceptable level
        ("urn:mace:incommon:iap:silver", None, None),  # unknown values are ignored
        ("urn:other 2", None, "2"),
        (None, essential(values=["2"]), "2"),
        (None, essential(value="2"), "2"),
        (None, essential(values=["urn:other", "2"]), "2"),
        (None, essential(), None),  # "must say which": every id_token carries acr
        (None, essential(values=[]), None),
        (None, {"id_token": {"acr": {"values": ["urn:other"]}}}, None),  # voluntary
        (None, {"id_token": {"acr": None}}, None),
        (None, {"userinfo": {"acr": {"essential": True, "value": "2"}}}, None),
        ("1", essential(values=["2"]), "2"),  # the stricter of the two
        ("2", essential(values=["1"]), "2"),
    ],
)
def test_the_required_level(
    acr_values: str | None, claims: dict[str, Any] | None, required: str | None
) -> None:
    assert required_acr(acr_values, claims) == required


@pytest.mark.parametrize(
    "spec", [{"values": ["urn:gold"]}, {"value": "urn:gold"}, {"values": [2, None, ["2"]]}]
)
def test_an_essential_acr_with_no_value_of_ours_cannot_be_met(spec: dict[str, Any]) -> None:
    with pytest.raises(UnmeetableAcr):
        required_acr(None, essential(**spec))


def test_levels_are_ordered() -> None:
    assert satisfies("2", "1") and satisfies("2", "2") and satisfies("1", "1")
    assert not satisfies("1", "2")
    assert not satisfies(None, "1") and not satisfies("urn:other", "1")
