"""Rate limits: people posting forms and clients calling the API get 429 with Retry-After."""

from __future__ import annotations

import base64
import logging
import os
import socket
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.functional.test_sign_in import csrf_token

REDIS_URL = "redis://127.0.0.1:6379/15"
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def redis_available() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        if os.environ.get("CI") == "true":
            raise
        return False
    return True


needs_redis = pytest.mark.skipif(not redis_available(), reason="Redis not reachable")


def unique_ip() -> dict[str, str]:
    """A client address no other test or run uses, so shared Redis counters start at zero."""
    part = uuid.uuid4().int
    return {"REMOTE_ADDR": f"10.{part % 250}.{part // 250 % 250}.{part // 62500 % 250 + 1}"}


def post_login(client: FlaskClient) -> Any:
    token = csrf_token(client, "/login")
    return client.post(
        "/login", data={"csrf_token": token, "email": "x@example.com", "password": "wrong-pass"}
    )


def basic(client_id: str, secret: str = "s") -> dict[str, str]:  # noqa: S107
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_sign_in_posts_beyond_the_page_limit_get_a_429_page_with_retry_after(
    app_factory: Any,
) -> None:
    client = app_factory(ratelimit_pages="3/minute").test_client()
    assert [post_login(client).status_code for _ in range(3)] == [200, 200, 200]
    response = post_login(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.mimetype == "text/html"
    assert "Too many" in response.get_data(as_text=True)


def test_pages_are_not_limited_on_get(app_factory: Any) -> None:
    client = app_factory(ratelimit_pages="2/minute").test_client()
    for path in ("/login", "/signup", "/password/forgot", "/device"):
        assert all(client.get(path).status_code != 429 for _ in range(5))


def test_api_limit_answers_json_429_per_client(app_factory: Any) -> None:
    client = app_factory(ratelimit_api="2/minute").test_client()
    for _ in range(2):
        assert client.post("/oauth2/token", headers=basic("one")).status_code != 429
    refused = client.post("/oauth2/token", headers=basic("one"))
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another client (form client_id) has its own budget, from the same address.
    assert client.post("/oauth2/introspect", data={"client_id": "two"}).status_code != 429
    assert client.post("/oauth2/token", data={"client_id": "two"}).status_code != 429


def test_another_address_cannot_spend_a_clients_api_budget(app_factory: Any) -> None:
    app = app_factory(ratelimit_api="2/minute")
    attacker, service = app.test_client(), app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    service.environ_base["REMOTE_ADDR"] = "192.0.2.10"
    # Bogus requests naming the service's client_id, from elsewhere, until refused.
    codes = [attacker.post("/oauth2/token", headers=basic("service")).status_code for _ in range(3)]
    assert codes[-1] == 429

    assert service.post("/oauth2/token", headers=basic("service")).status_code != 429


def test_limits_can_be_switched_off(app_factory: Any) -> None:
    client = app_factory(ratelimit_pages="1/minute", ratelimit_enabled=False).test_client()
    assert all(post_login(client).status_code == 200 for _ in range(3))


def test_each_app_counts_alone_with_memory_storage(app_factory: Any) -> None:
    first = app_factory(ratelimit_pages="1/minute").test_client()
    second = app_factory(ratelimit_pages="1/minute").test_client()
    assert post_login(first).status_code == 200
    assert post_login(second).status_code == 200
    assert post_login(first).status_code == 429


@needs_redis
def test_limits_hold_across_two_instances_sharing_redis(app_factory: Any) -> None:
    ip = unique_ip()
    apps = [app_factory(redis_url=REDIS_URL, ratelimit_pages="3/minute") for _ in range(2)]
    clients = [app.test_client() for app in apps]
    for client in clients:
        client.environ_base.update(ip)
    codes = [post_login(clients[i % 2]).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]


def test_redis_down_falls_back_to_memory_and_warns_once(
    app_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_factory(redis_url=CLOSED_PORT_URL, ratelimit_pages="3/minute").test_client()
    with caplog.at_level(logging.WARNING):
        codes = [post_login(client).status_code for _ in range(4)]
        assert client.post("/oauth2/token", data={"grant_type": "x"}).status_code == 400
    assert codes == [200, 200, 200, 429]  # still limited, in this process's memory
    warnings = [r for r in caplog.records if "storage unreachable" in r.getMessage()]
    assert len(warnings) == 1


def test_redis_down_fails_closed_when_configured(app_factory: Any) -> None:
    app = app_factory(redis_url=CLOSED_PORT_URL, ratelimit_fail_closed=True)
    client = app.test_client()
    assert client.get("/login").status_code == 200  # not limited, not refused
    refused = post_login(client)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"]
    token = client.post("/oauth2/token", data={"grant_type": "x"})
    assert token.status_code == 503
    assert token.get_json()["error"] == "temporarily_unavailable"


def test_the_readme_says_what_failing_closed_answers() -> None:
    """README and code agree: failing closed refuses with 503 (above), not 429."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    paragraph = readme[readme.index("**Rate limits**") :].split("\n\n")[0]
    assert "AUTHSERVER_RATELIMIT_FAIL_CLOSED=true" in paragraph
    assert "503" in paragraph and "(429)" not in paragraph
