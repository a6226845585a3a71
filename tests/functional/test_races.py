"""Two instances redeem the same code, or the same refresh token, at the same instant.

Each round releases two threads at once (a barrier), one calling instance A and
one calling B. Exactly one gets tokens; the other gets invalid_grant (unless the client
opted into a refresh-token grace period: then both get tokens, last test). A code or a
refresh token presented twice is a replay however close together the two came,
so the family is revoked: RFC 6749 section 4.1.2 (codes) and RFC 9700 section
4.14.2 (refresh tokens). The server cannot tell the thief from the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
import requests

from tests.factories import make_client
from tests.functional.instances import (
    Cluster,
    Instance,
    authorization_code,
    introspect,
    redeem_code,
    refresh,
    sign_in,
    two_instances,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROUNDS = 25


@pytest.fixture(scope="module")
def cluster(
    database_url: str,
    instance_dir: Path,
    _schema: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    with two_instances(database_url, instance_dir, tmp_path_factory.mktemp("races")) as c:
        yield c


@pytest.fixture(scope="module")
def browser(cluster: Cluster) -> requests.Session:
    """Alice, signed in once; consent is remembered after the first code."""
    browser = requests.Session()
    assert sign_in(browser, cluster.a).status_code == 302
    return browser


def at_once(
    cluster: Cluster, call: Callable[[Instance], requests.Response]
) -> list[requests.Response]:
    """Call A and B from two threads released by one barrier; both responses, A's first."""
    barrier = threading.Barrier(2, timeout=10)
    responses: dict[str, requests.Response] = {}
    errors: list[BaseException] = []

    def run(instance: Instance) -> None:
        try:
            barrier.wait()
            responses[instance.name] = call(instance)
        except BaseException as error:  # reported by the test thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in (cluster.a, cluster.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a request did not finish"
    assert not errors, errors
    return [responses["a"], responses["b"]]


def one_winner(responses: list[requests.Response]) -> dict[str, str]:
    """Exactly one 200; the other an invalid_grant. Returns the winner's tokens."""
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 400], [r.text for r in responses]
    (winner,) = (r for r in responses if r.status_code == 200)
    (loser,) = (r for r in responses if r.status_code == 400)
    assert loser.json()["error"] == "invalid_grant"
    tokens: dict[str, str] = winner.json()
    return tokens


def test_one_code_redeemed_at_once_on_two_instances_has_exactly_one_winner(
    cluster: Cluster, browser: requests.Session
) -> None:
    winners = {"a": 0, "b": 0}
    for _ in range(ROUNDS):
        code, verifier = authorization_code(cluster, browser, cluster.a)

        responses = at_once(cluster, partial(redeem_code, cluster, code=code, verifier=verifier))

        tokens = one_winner(responses)
        winners["a" if responses[0].status_code == 200 else "b"] += 1
        # The replay revoked what the code had issued.
        assert introspect(cluster, cluster.b, tokens["access_token"]) == {"active": False}
        assert introspect(cluster, cluster.a, tokens["refresh_token"]) == {"active": False}
        assert refresh(cluster, cluster.a, tokens["refresh_token"]).status_code == 400
    assert sum(winners.values()) == ROUNDS


def test_one_refresh_token_used_at_once_on_two_instances_has_exactly_one_winner(
    cluster: Cluster, browser: requests.Session
) -> None:
    for _ in range(ROUNDS):
        code, verifier = authorization_code(cluster, browser, cluster.a)
        issued = redeem_code(cluster, cluster.a, code, verifier)
        assert issued.status_code == 200, issued.text
        refresh_token = issued.json()["refresh_token"]

        responses = at_once(cluster, partial(refresh, cluster, refresh_token=refresh_token))

        tokens = one_winner(responses)
        assert tokens["refresh_token"] != refresh_token
        # Reuse detected: the whole family is revoked, the winner's new tokens included,
        # so no round leaves two valid refresh tokens (nor even one).
        for token in (tokens["refresh_token"], tokens["access_token"], refresh_token):
            assert introspect(cluster, cluster.b, token) == {"active": False}
        assert refresh(cluster, cluster.b, tokens["refresh_token"]).status_code == 400


def test_one_refresh_token_used_at_once_within_its_grace_period_gets_two_winners(
    cluster: Cluster, browser: requests.Session
) -> None:
    """A client with a grace period: both requests get tokens and the family lives on."""

    def two_tabs() -> tuple[str, str]:
        client, secret = make_client(name="Two tabs", refresh_token_grace_period_seconds=30)
        assert secret is not None
        return client.client_id, secret

    rp_id, rp_secret = cluster.run(two_tabs)
    graced = replace(cluster, rp_id=rp_id, rp_secret=rp_secret)
    for _ in range(ROUNDS):
        code, verifier = authorization_code(graced, browser, graced.a)
        issued = redeem_code(graced, graced.a, code, verifier)
        assert issued.status_code == 200, issued.text
        refresh_token = issued.json()["refresh_token"]

        responses = at_once(graced, partial(refresh, graced, refresh_token=refresh_token))

        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        tokens = [r.json() for r in responses]
        assert tokens[0]["refresh_token"] != tokens[1]["refresh_token"]
        for token in tokens:
            assert introspect(graced, graced.b, token["access_token"])["active"] is True
            assert introspect(graced, graced.a, token["refresh_token"])["active"] is True
        # Once one successor is rotated in turn, the shared token is two rotations old:
        # presenting it again is reuse, and revokes the family.
        assert refresh(graced, graced.b, tokens[0]["refresh_token"]).status_code == 200
        assert refresh(graced, graced.a, refresh_token).json()["error"] == "invalid_grant"
        for token in tokens:
            assert introspect(graced, graced.b, token["refresh_token"]) == {"active": False}
