"""oidc.subjects: the `sub` each client receives (OpenID Connect Core section 8)."""

from __future__ import annotations

import re
from dataclasses import replace
from types import SimpleNamespace

import pytest
from flask import Flask

from authserver.oidc.subjects import is_subject_of, pairwise_subject, subject_for

SECRET = "k" * 40


def person(sub: str = "public-sub-of-alice") -> SimpleNamespace:
    return SimpleNamespace(sub=sub)


def rp(
    *redirect_uris: str, subject_type: str = "pairwise", sector: str | None = None
) -> SimpleNamespace:
    """The three client fields subject_for reads (a row or a cached snapshot has them)."""
    return SimpleNamespace(
        subject_type=subject_type,
        sector_identifier_uri=sector,
        redirect_uris=list(redirect_uris or ["https://shop.example.com/cb"]),
    )


def test_a_public_client_gets_the_public_sub(app: Flask) -> None:
    alice = person()
    assert subject_for(alice, rp(subject_type="public")) == "public-sub-of-alice"


def test_a_pairwise_sub_is_stable_within_a_sector(app: Flask) -> None:
    alice = person()
    first = subject_for(alice, rp("https://shop.example.com/cb"))
    again = subject_for(alice, rp("https://shop.example.com/other", "https://shop.example.com/x"))
    assert first == again
    assert first != alice.sub
    # Section 8.1: 256 bits, unpadded base64url, no larger than a public sub's column.
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", first)


def test_pairwise_subs_differ_across_sectors_and_people(app: Flask) -> None:
    alice, bob = person("alice"), person("bob")
    shop, bank = rp("https://shop.example.com/cb"), rp("https://bank.example.org/cb")
    assert subject_for(alice, shop) != subject_for(alice, bank)
    assert subject_for(alice, shop) != subject_for(bob, shop)


def test_clients_sharing_a_sector_identifier_uri_share_the_sub(app: Flask) -> None:
    alice = person()
    sector = "https://shop.example.com/sector.json"
    web = rp("https://www.shop.example.com/cb", "https://shop.example.com/cb", sector=sector)
    mobile = rp("com.example.shop:/cb", sector=sector)
    same_host = rp("https://shop.example.com/cb")
    assert subject_for(alice, web) == subject_for(alice, mobile) == subject_for(alice, same_host)


def test_the_value_is_an_hmac_of_sector_and_public_sub_under_the_configured_key(
    app: Flask,
) -> None:
    alice, shop = person(), rp("https://shop.example.com/cb")
    app.config["AUTHSERVER"] = replace(app.config["AUTHSERVER"], pairwise_secret=SECRET)
    assert subject_for(alice, shop) == pairwise_subject("shop.example.com", alice.sub, SECRET)
    # Rotating the key changes every pairwise sub (README, Pairwise subject identifiers).
    app.config["AUTHSERVER"] = replace(app.config["AUTHSERVER"], pairwise_secret="j" * 40)
    assert subject_for(alice, shop) != pairwise_subject("shop.example.com", alice.sub, SECRET)


def test_the_separator_keeps_sector_and_sub_apart() -> None:
    assert pairwise_subject("a.example", "bc", SECRET) != pairwise_subject(
        "a.exampleb", "c", SECRET
    )


def test_without_a_key_no_pairwise_sub_is_made() -> None:
    with pytest.raises(RuntimeError, match="PAIRWISE_SECRET"):
        pairwise_subject("shop.example.com", "alice", "")


def test_is_subject_of_compares_with_the_clients_value(app: Flask) -> None:
    alice, shop = person(), rp()
    assert is_subject_of(subject_for(alice, shop), alice, shop)
    assert not is_subject_of(alice.sub, alice, shop)
    assert not is_subject_of(None, alice, shop)
    assert is_subject_of(alice.sub, alice, rp(subject_type="public"))
