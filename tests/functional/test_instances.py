"""Two instances behind one load balancer share PostgreSQL and Redis and need nothing else.

A session started on one is valid on the other, a token revoked on one is
refused by the other's introspection within a second (core.epoch's bound, although
the other had the token's answer cached), a key rotated anywhere is published by both
before either signs with it (and an emergency rotation takes the old key out of both
within a second), and rate limits count across both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from authserver.admin.services.clients import set_client_active
from authserver.clients.models import Client
from authserver.core.epoch import POLL_SECONDS
from authserver.extensions import db
from tests.functional.instances import (
    CACHE_TTL,
    HTTP_TIMEOUT,
    PAGE_LIMIT,
    SESSION_COOKIE,
    Cluster,
    Instance,
    authorization_code,
    clear_redis,
    client_credentials_token,
    command,
    introspect,
    kid_of,
    redeem_code,
    sign_in,
    two_instances,
)
from tests.oauth_helpers import authorize_params, basic, csrf_token, pkce_pair

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Longer than CACHE_TTL plus the JWKS max-age (2 * CACHE_TTL), as config.py demands.
PREPUBLISH = 3 * CACHE_TTL + 2


@pytest.fixture(scope="module")
def cluster(
    database_url: str,
    instance_dir: Path,
    _schema: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("instances")
    with two_instances(
        database_url, instance_dir, folder, key_prepublish_seconds=str(PREPUBLISH)
    ) as c:
        yield c


def signed_in_tokens(cluster: Cluster) -> dict[str, str]:
    """Sign in and consent on A, redeem the code on B: a person's token response."""
    browser = requests.Session()
    assert sign_in(browser, cluster.a).status_code == 302
    code, verifier = authorization_code(cluster, browser, cluster.a)
    response = redeem_code(cluster, cluster.b, code, verifier)
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


def test_a_session_started_on_one_instance_is_valid_on_the_other(cluster: Cluster) -> None:
    _, challenge = pkce_pair()
    params = authorize_params(cluster.rp_id, challenge)
    anonymous = requests.get(
        cluster.b.url + "/authorize", params=params, allow_redirects=False, timeout=HTTP_TIMEOUT
    )
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]

    on_a = requests.Session()
    assert sign_in(on_a, cluster.a).status_code == 302
    # A second browser holding only the session cookie A set: as if B were picked next.
    on_b = requests.Session()
    on_b.cookies.set(SESSION_COOKIE, on_a.cookies[SESSION_COOKIE])
    consent = on_b.get(
        cluster.b.url + "/authorize", params=params, allow_redirects=False, timeout=HTTP_TIMEOUT
    )

    assert consent.status_code == 200, consent.headers.get("Location")
    assert 'value="allow"' in consent.text
    assert 'name="password"' not in consent.text

    # B finishes the flow, A redeems the code.
    code, verifier = authorization_code(cluster, on_b, cluster.b)
    assert redeem_code(cluster, cluster.a, code, verifier).status_code == 200


def test_a_token_revoked_on_one_instance_introspects_inactive_on_the_other(
    cluster: Cluster,
) -> None:
    first, second = signed_in_tokens(cluster), signed_in_tokens(cluster)
    for token in (first["access_token"], first["refresh_token"], second["access_token"]):
        assert introspect(cluster, cluster.b, token)["active"] is True

    for token, hint in ((first["refresh_token"], "refresh_token"), (second["access_token"], None)):
        data = {"token": token} | ({"token_type_hint": hint} if hint else {})
        revoked = requests.post(
            cluster.a.url + "/oauth2/revoke",
            data=data,
            headers=basic(cluster.rp_id, cluster.rp_secret),
            timeout=HTTP_TIMEOUT,
        )
        assert revoked.status_code == 200, revoked.text

    # Revoking a refresh token ends its grant, so its access token goes with it. B had
    # both access tokens' answers cached: it drops them within the epoch's bound.
    for token in (first["refresh_token"], first["access_token"], second["access_token"]):
        assert seconds_until_inactive(cluster, cluster.b, token) <= POLL_SECONDS + SLACK
    assert introspect(cluster, cluster.b, second["refresh_token"])["active"] is True


# Request time on a loaded machine, on top of the bound itself.
SLACK = 0.5


def seconds_until_inactive(cluster: Cluster, instance: Instance, token: str) -> float:
    """Introspect on `instance` until the token is inactive; the seconds that took."""
    started = time.monotonic()
    while introspect(cluster, instance, token)["active"]:
        assert time.monotonic() - started < 5 * POLL_SECONDS, "still active after 5 s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_client_disabled_anywhere_loses_its_cached_tokens_everywhere_within_a_second(
    cluster: Cluster,
) -> None:
    rp_token = signed_in_tokens(cluster)["access_token"]
    # Cached on both instances: each answers from memory from the second call on.
    for instance in (cluster.a, cluster.b, cluster.a, cluster.b):
        assert introspect(cluster, instance, rp_token)["active"] is True
        userinfo = requests.get(
            instance.url + "/userinfo",
            headers={"Authorization": f"Bearer {rp_token}"},
            timeout=HTTP_TIMEOUT,
        )
        assert userinfo.status_code == 200

    def disable() -> None:
        client = db.session.scalar(db.select(Client).filter_by(client_id=cluster.rp_id))
        set_client_active(client, False)
        db.session.commit()

    def enable() -> None:
        client = db.session.scalar(db.select(Client).filter_by(client_id=cluster.rp_id))
        set_client_active(client, True)
        db.session.commit()

    cluster.run(disable)
    try:
        for instance in (cluster.a, cluster.b):
            assert seconds_until_inactive(cluster, instance, rp_token) <= POLL_SECONDS + SLACK
            refused = requests.get(
                instance.url + "/userinfo",
                headers={"Authorization": f"Bearer {rp_token}"},
                timeout=HTTP_TIMEOUT,
            )
            assert refused.status_code == 401
    finally:
        cluster.run(enable)


def published_kids(instance: Instance) -> set[str]:
    response = requests.get(instance.url + "/.well-known/jwks.json", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def jwks_of(instance: Instance) -> KeySet:
    response = requests.get(instance.url + "/.well-known/jwks.json", timeout=HTTP_TIMEOUT)
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def test_after_a_rotation_no_token_carries_a_kid_any_instance_does_not_publish(
    cluster: Cluster,
) -> None:
    """The measurement of issue 13 (25 of 153 tokens with an unpublished kid), repeated."""
    before = {kid_of(client_credentials_token(cluster, i)) for i in (cluster.a, cluster.b)}
    assert len(before) == 1
    (old_kid,) = before

    output = command(cluster, "keys", "rotate", "--alg", "ES256")
    assert "signing from" in output
    rotated_at = time.monotonic()

    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    checked = 0
    while time.monotonic() - rotated_at < PREPUBLISH + CACHE_TTL + 2:
        for instance in (cluster.a, cluster.b):
            token = client_credentials_token(cluster, instance)
            kid = kid_of(token)
            seen[instance.name].add(kid)
            for other in (cluster.a, cluster.b):  # fetched right after, from both
                keys = jwks_of(other)
                assert kid in {k.kid for k in keys}, f"{instance.name} signed with {kid}"
                assert jwt.decode(token, keys, algorithms=["ES256"]).claims["iss"]
            checked += 1
        time.sleep(0.1)

    (new_kid,) = {kid for kids in seen.values() for kid in kids} - {old_kid}
    # Both kept signing with the old key first, and both moved to the new one.
    assert seen == {"a": {old_kid, new_kid}, "b": {old_kid, new_kid}}
    assert checked > 20
    for instance in (cluster.a, cluster.b):
        assert kid_of(client_credentials_token(cluster, instance)) == new_kid
        assert old_kid in published_kids(instance)  # its tokens have not expired yet


def test_an_emergency_rotation_takes_the_old_key_out_of_every_instance_within_a_second(
    cluster: Cluster,
) -> None:
    old_token = client_credentials_token(cluster, cluster.b)
    old_kid = kid_of(old_token)
    for instance in (cluster.a, cluster.b):  # both have the token's answer cached
        assert introspect(cluster, instance, old_token)["active"] is True

    output = command(cluster, "keys", "rotate", "--alg", "ES256", "--emergency", "--yes")
    assert "stops verifying" in output and "Revoked" in output

    for instance in (cluster.a, cluster.b):
        assert seconds_until_inactive(cluster, instance, old_token) <= POLL_SECONDS + SLACK
        new_kid = kid_of(client_credentials_token(cluster, instance))
        assert new_kid != old_kid
        assert new_kid in published_kids(instance)
    # The thin layer's JWKS follows within the key cache's lifetime.
    deadline = time.monotonic() + CACHE_TTL + SLACK
    for instance in (cluster.a, cluster.b):
        while old_kid in published_kids(instance):
            assert time.monotonic() < deadline, f"{instance.name} still publishes {old_kid}"
            time.sleep(0.1)


def failed_sign_in(instance: Instance, attempt: int) -> requests.Response:
    browser = requests.Session()
    page = browser.get(instance.url + "/login", timeout=HTTP_TIMEOUT)
    return browser.post(
        instance.url + "/login",
        data={
            # Unknown addresses: no per-account lockout, only the per-IP limit applies.
            "email": f"nobody-{attempt}@example.com",
            "password": "wrong password",
            "csrf_token": csrf_token(page.text),
        },
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )


def test_rate_limits_count_across_instances(cluster: Cluster) -> None:
    clear_redis()
    statuses = [failed_sign_in(cluster.a, n).status_code for n in range(3)]
    statuses += [failed_sign_in(cluster.b, n).status_code for n in range(3, PAGE_LIMIT)]
    assert 429 not in statuses, statuses

    limited = failed_sign_in(cluster.b, PAGE_LIMIT)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert failed_sign_in(cluster.a, PAGE_LIMIT + 1).status_code == 429
    clear_redis()
