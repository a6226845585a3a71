"""`GET /healthz` says whether this instance can serve: the database decides, Redis is reported.

It needs no credentials and is never cached. A database that cannot be reached
is a 503 with Retry-After, never a 500; Redis being down does not fail it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from authserver import create_app
from authserver.extensions import db
from tests.conftest import app_overrides

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def test_healthz_is_ok_when_the_database_answers(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_is_503_with_retry_after_when_the_query_fails(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.get("/healthz")  # first request: signing keys exist

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(db.session, "execute", refuse)
    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable"}
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"


def test_an_unreachable_database_is_503_not_500(tmp_path: Path, instance_dir: Path) -> None:
    missing = tmp_path / "no-such-directory" / "authserver.db"
    app = create_app(app_overrides(f"sqlite:///{missing}", instance_dir))
    client = app.test_client()

    health = client.get("/healthz")
    token = client.post("/oauth2/token", data={"grant_type": "client_credentials"})
    page = client.get("/account", headers={"Accept": "text/html"})

    assert health.status_code == 503 and health.headers["Retry-After"] == "5"
    assert health.is_json
    assert token.status_code == 503 and token.headers["Retry-After"] == "5"
    assert token.get_json()["error"] == "temporarily_unavailable"
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert page.mimetype == "text/html"
    assert "Temporarily unavailable" in page.get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()


def test_healthz_stays_ok_but_reports_redis_when_redis_is_down(app_factory: Any) -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    app: Flask = app_factory(redis_url="redis://127.0.0.1:1/0")

    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "redis": "unavailable"}


def test_healthz_reports_redis_when_it_answers(app_factory: Any) -> None:
    if not redis_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("Redis is not reachable on 127.0.0.1:6379")
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    app: Flask = app_factory(redis_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/15")

    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "redis": "ok"}
