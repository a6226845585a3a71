"""Two real server processes (gunicorn) on loopback, sharing one PostgreSQL and one Redis.

What a load balancer in front of several instances would see: both processes
have the same secret and the same issuer (instance A's URL; tokens check `iss`,
never `Host`), and each is called on its own port. People and clients are made
in the test process through the app's services and committed before use.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from authserver import create_app
from tests.conftest import TEST_SECRET, _empty_tables, app_overrides
from tests.factories import PASSWORD, REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import authorize_params, basic, csrf_token, pkce_pair

ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# A Redis database of our own: other tests use 15 (health) and 0.
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/14"
CACHE_TTL = 2
PAGE_LIMIT = 5
START_TIMEOUT = 30.0
HTTP_TIMEOUT = 10.0
SESSION_COOKIE = "authserver_session"


@dataclass
class Instance:
    """One gunicorn process; `url` is where it listens, not necessarily the issuer."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Cluster:
    """Instances A and B, the issuer they share, and the people and clients made for them."""

    a: Instance
    b: Instance
    issuer: str
    app: Flask  # the test process's own app on the same database, for seeding and looking
    rp_id: str
    rp_secret: str
    rs_id: str
    rs_secret: str
    # The instances' environment: what a `authserver` command on the same deployment gets.
    environ: dict[str, str]

    def run(self, work: Any) -> Any:
        """Call `work` in the seeding app's context, then drop its session."""
        from authserver.extensions import db

        with self.app.app_context():
            try:
                return work()
            finally:
                db.session.remove()


def redis_available() -> bool:
    """Whether Redis answers; outside CI a missing Redis skips, under CI it fails."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        if os.environ.get("CI") == "true":
            raise
        return False


def clear_redis() -> None:
    """Empty our own Redis database (never FLUSHALL: Redis is shared)."""
    import redis

    connection = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        keys = list(connection.scan_iter(count=500))
        if keys:
            connection.delete(*keys)
    finally:
        connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_instance(name: str, port: int, environ: dict[str, str], folder: Path) -> Instance:
    log = folder / f"{name}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{port}",
                "--graceful-timeout",
                "5",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Instance(name, f"http://127.0.0.1:{port}", process, log)


def wait_until_ready(instance: Instance, deadline: float) -> None:
    """Poll the discovery document until it answers (or the process dies, or time is up)."""
    while True:
        if instance.process.poll() is not None:
            raise AssertionError(f"instance {instance.name} exited:\n{instance.log_tail()}")
        try:
            response = requests.get(instance.url + "/.well-known/openid-configuration", timeout=2)
            if response.status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"instance {instance.name} did not start:\n{instance.log_tail()}")
        time.sleep(0.1)


def stop_instance(instance: Instance) -> None:
    if instance.process.poll() is None:
        instance.process.terminate()
        try:
            instance.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=5)


@contextmanager
def two_instances(
    database_url: str, instance_dir: Path, folder: Path, **settings: str
) -> Iterator[Cluster]:
    """Start A and B against one database and one Redis; stop both and empty the tables after."""
    if not database_url.startswith("postgresql"):
        pytest.fail("the multi-instance tests need AUTHSERVER_TEST_DATABASE_URL (PostgreSQL)")
    if not redis_available():
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    clear_redis()
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    environ.update(
        AUTHSERVER_ENV="testing",
        AUTHSERVER_ISSUER=issuer,
        AUTHSERVER_DATABASE_URL=database_url,
        AUTHSERVER_SECRET_KEY=TEST_SECRET,
        AUTHSERVER_INSTANCE_PATH=str(instance_dir),
        AUTHSERVER_REDIS_URL=REDIS_URL,
        AUTHSERVER_CACHE_TTL=str(CACHE_TTL),
        AUTHSERVER_ARGON2_MEMORY_COST="1024",
        AUTHSERVER_ARGON2_TIME_COST="1",
        AUTHSERVER_RATELIMIT_PAGES=f"{PAGE_LIMIT}/minute",
    )
    environ.update({f"AUTHSERVER_{k.upper()}": v for k, v in settings.items()})
    # Seeds and empties the tables only: no mail sender thread racing the engine's disposal.
    app = create_app(
        app_overrides(database_url, instance_dir, issuer=issuer, mail_sender="external")
    )
    instances: list[Instance] = []
    try:
        for name, port in (("a", port_a), ("b", port_b)):
            instances.append(start_instance(name, port, environ, folder))
        rp_id, rp_secret, rs_id, rs_secret = _seed(app)
        deadline = time.monotonic() + START_TIMEOUT
        for instance in instances:
            wait_until_ready(instance, deadline)
        a, b = instances
        yield Cluster(a, b, issuer, app, rp_id, rp_secret, rs_id, rs_secret, environ)
    finally:
        for instance in instances:
            stop_instance(instance)
        _empty_tables(app)
        with app.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()
        clear_redis()


def _seed(app: Flask) -> tuple[str, str, str, str]:
    """Alice, a relying party and a resource server, committed: (rp id, secret, rs id, secret)."""
    from authserver.extensions import db

    with app.app_context():
        make_user()
        rp, rp_secret = make_client(name="Relying party")
        rs, rs_secret = make_client(
            name="Resource server",
            redirect_uris=(),
            grant_types=("client_credentials",),
            scope="api:read",
            is_resource_server=True,
        )
        assert rp_secret is not None and rs_secret is not None
        db.session.commit()
        seeded = rp.client_id, rp_secret, rs.client_id, rs_secret
        db.session.remove()
    return seeded


# -- the person's browser and the clients, over HTTP ------------------------------------------


def sign_in(browser: requests.Session, instance: Instance) -> requests.Response:
    """Post the sign-in form of `instance` (CSRF token parsed from the page)."""
    page = browser.get(instance.url + "/login", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200, page.text
    return browser.post(
        instance.url + "/login",
        data={
            "email": "alice@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_token(page.text),
        },
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )


def authorization_code(
    cluster: Cluster, browser: requests.Session, instance: Instance
) -> tuple[str, str]:
    """Ask `instance` for a code as a signed-in, consenting person: (code, code_verifier)."""
    import html
    import re

    verifier, challenge = pkce_pair()
    response = browser.get(
        instance.url + "/authorize",
        params=authorize_params(cluster.rp_id, challenge),
        allow_redirects=False,
        timeout=HTTP_TIMEOUT,
    )
    if response.status_code == 200:
        assert 'value="allow"' in response.text, "expected the consent page"
        fields = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text)
        )
        data = {html.unescape(k): html.unescape(v) for k, v in fields.items()}
        data["decision"] = "allow"
        ticked = re.findall(
            r'<input type="checkbox" name="([^"]+)" value="([^"]*)" checked>', response.text
        )
        response = browser.post(
            instance.url + "/authorize/decision",
            data=[*data.items(), *((html.unescape(k), html.unescape(v)) for k, v in ticked)],
            allow_redirects=False,
            timeout=HTTP_TIMEOUT,
        )
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return parse_qs(urlsplit(location).query)["code"][0], verifier


def redeem_code(
    cluster: Cluster, instance: Instance, code: str, verifier: str
) -> requests.Response:
    return requests.post(
        instance.url + "/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        headers=basic(cluster.rp_id, cluster.rp_secret),
        timeout=HTTP_TIMEOUT,
    )


def refresh(cluster: Cluster, instance: Instance, refresh_token: str) -> requests.Response:
    return requests.post(
        instance.url + "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=basic(cluster.rp_id, cluster.rp_secret),
        timeout=HTTP_TIMEOUT,
    )


def introspect(cluster: Cluster, instance: Instance, token: str) -> dict[str, Any]:
    """RFC 7662: access tokens asked by the resource server, refresh tokens by their client
    (section 4: a resource server never learns about refresh tokens)."""
    is_jwt = token.count(".") == 2
    client_id, secret = (
        (cluster.rs_id, cluster.rs_secret) if is_jwt else (cluster.rp_id, cluster.rp_secret)
    )
    response = requests.post(
        instance.url + "/oauth2/introspect",
        data={"token": token},
        headers=basic(client_id, secret),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def kid_of(token: str) -> str:
    """The `kid` in a JWS's protected header (RFC 7515 section 4.1.4), read without verifying."""
    header = token.split(".")[0]
    kid: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return kid


def command(cluster: Cluster, *args: str) -> str:
    """Run `authserver ARGS` as an operator would on the deployment; its output."""
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "authserver"), *args],
        cwd=ROOT,
        env=cluster.environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def client_credentials_token(cluster: Cluster, instance: Instance) -> str:
    response = requests.post(
        instance.url + "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "api:read"},
        headers=basic(cluster.rs_id, cluster.rs_secret),
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
