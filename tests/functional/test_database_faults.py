"""The database blinks while tokens are being issued: no 500, nothing confirmed is lost.

A TCP proxy written here sits between a live server and PostgreSQL. While
client_credentials and refresh token requests stream in from several threads,
every proxied connection is cut and new ones are refused for two seconds, then
the path is restored. The real PostgreSQL server is never touched.

Promises checked: every answer is a 200, a 503 with Retry-After or an OAuth
error; every token answered with 200 introspects as active afterwards (a token
response is sent only after its rows are committed); the server recovers by
itself (pool pre-ping replaces the dead connections).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, make_server

from authserver import create_app
from authserver.extensions import db
from tests.conftest import app_overrides
from tests.factories import make_client, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STREAM_THREADS = 3
OUTAGE_SECONDS = 2.0


class CuttableProxy:
    """A loopback TCP proxy to `upstream` whose connections can all be cut at once."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = threading.Event()
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.thread = threading.Thread(target=self._accept, name="db-proxy", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                downstream.close()  # the database is "down": refuse at once
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.sockets.update((downstream, upstream))
            for source, target in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._close(source, target)

    def _close(self, *pair: socket.socket) -> None:
        for sock in pair:
            with self.lock:
                self.sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until `restore`."""
        self.refusing.set()
        with self.lock:
            open_sockets = list(self.sockets)
        self._close(*open_sockets)

    def restore(self) -> None:
        self.refusing.clear()

    def close(self) -> None:
        self.closing.set()
        self.cut()
        self.listener.close()
        self.thread.join(timeout=5)


@dataclass
class Outcome:
    """What the stream saw: every status, the tokens confirmed with 200, any broken promise."""

    statuses: list[int] = field(default_factory=list)
    access_tokens: list[str] = field(default_factory=list)
    refresh_tokens: list[str] = field(default_factory=list)
    # Refresh chains whose grant was revoked because a consumed token was replayed
    # after an answer the client never got (the commit landed as the connection died).
    replayed_chains: set[int] = field(default_factory=set)
    chain_tokens: dict[int, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    url = make_url(database_url)
    proxy = CuttableProxy((url.host or "127.0.0.1", url.port or 5432))
    try:
        yield proxy
    finally:
        proxy.close()


@dataclass
class Faulty:
    url: str
    rs: tuple[str, str]
    rp: tuple[str, str]
    refresh_tokens: list[str]


@pytest.fixture
def faulty_server(
    app_factory: Any, database_url: str, instance_dir: Path, proxy: CuttableProxy
) -> Iterator[Faulty]:
    """A live server whose database connections go through the proxy."""
    # The first app (direct to PostgreSQL) seeds the data and empties the tables afterwards.
    direct: Flask = app_factory()
    with direct.app_context():
        make_user()
        rs, rs_secret = make_client(
            name="Resource server",
            redirect_uris=(),
            grant_types=("client_credentials",),
            scope="api:read",
            is_resource_server=True,
        )
        rp, rp_secret = make_client(name="Live RP")
        assert rs_secret is not None and rp_secret is not None
        browser = direct.test_client()
        sign_in(browser)
        refresh_tokens = []
        for _ in range(STREAM_THREADS):
            verifier, challenge = pkce_pair()
            code, _ = get_code(browser, rp.client_id, challenge)
            tokens = exchange(browser, rp.client_id, rp_secret, code, verifier).get_json()
            refresh_tokens.append(tokens["refresh_token"])
        rs_id, rp_id = rs.client_id, rp.client_id

    proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    served: dict[str, Flask] = {}

    def late_bound(environ: dict[str, Any], start_response: Any) -> Any:
        return served["app"](environ, start_response)

    server: BaseWSGIServer = make_server("127.0.0.1", 0, late_bound, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = create_app(
        app_overrides(
            proxied.render_as_string(hide_password=False),
            instance_dir,
            issuer=url,
            ratelimit_enabled=False,
            # No mail here: a sender thread would race the engine's disposal at teardown.
            mail_sender="external",
        )
    )
    served["app"] = app
    thread = threading.Thread(target=server.serve_forever, name="faulty-authserver", daemon=True)
    thread.start()
    try:
        yield Faulty(url, (rs_id, rs_secret), (rp_id, rp_secret), refresh_tokens)
    finally:
        proxy.restore()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def check_answer(response: requests.Response, outcome: Outcome) -> dict[str, Any] | None:
    """Record the status; the token response for a 200, None otherwise."""
    with outcome.lock:
        outcome.statuses.append(response.status_code)
    if response.status_code == 200:
        return dict(response.json())
    if response.status_code == 503:
        if "Retry-After" not in response.headers:
            outcome.problems.append("503 without Retry-After")
        if response.json().get("error") != "temporarily_unavailable":
            outcome.problems.append(f"503 with {response.text}")
        return None
    body = (
        response.json()
        if response.headers.get("Content-Type", "").startswith("application/json")
        else {}
    )
    if response.status_code >= 500 or "error" not in body:
        outcome.problems.append(f"{response.status_code}: {response.text[:200]}")
    return None


def stream_client_credentials(server: Faulty, outcome: Outcome, stop: threading.Event) -> None:
    with requests.Session() as session:
        _stream_client_credentials(server, session, outcome, stop)


def _stream_client_credentials(
    server: Faulty, session: requests.Session, outcome: Outcome, stop: threading.Event
) -> None:
    while not stop.is_set():
        response = session.post(
            server.url + "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "api:read"},
            headers=basic(*server.rs),
            timeout=30,
        )
        tokens = check_answer(response, outcome)
        if tokens is not None:
            with outcome.lock:
                outcome.access_tokens.append(tokens["access_token"])


def stream_refresh(
    server: Faulty, chain: int, refresh_token: str, outcome: Outcome, stop: threading.Event
) -> None:
    """Rotate one refresh token chain; after a 503 retry the same token, as a client would."""
    with requests.Session() as session:
        _rotate(server, session, chain, refresh_token, outcome, stop)


def _rotate(
    server: Faulty,
    session: requests.Session,
    chain: int,
    refresh_token: str,
    outcome: Outcome,
    stop: threading.Event,
) -> None:
    confirmed = outcome.chain_tokens.setdefault(chain, [])
    last_was_503 = False
    while not stop.is_set() and chain not in outcome.replayed_chains:
        response = session.post(
            server.url + "/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers=basic(*server.rp),
            timeout=30,
        )
        tokens = check_answer(response, outcome)
        if tokens is not None:
            refresh_token = tokens["refresh_token"]
            confirmed.extend((tokens["access_token"], refresh_token))
        elif response.status_code == 400 and response.json().get("error") == "invalid_grant":
            if not last_was_503:
                outcome.problems.append(f"chain {chain}: invalid_grant without a prior 503")
            outcome.replayed_chains.add(chain)
        last_was_503 = response.status_code == 503


def introspect(server: Faulty, token: str) -> dict[str, Any]:
    """Access tokens asked by the resource server, refresh tokens by their own client."""
    response = requests.post(
        server.url + "/oauth2/introspect",
        data={"token": token},
        headers=basic(*(server.rs if token.count(".") == 2 else server.rp)),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_cut_database_connections_never_give_500_and_lose_no_confirmed_token(
    faulty_server: Faulty, proxy: CuttableProxy
) -> None:
    server, outcome, stop = faulty_server, Outcome(), threading.Event()
    threads = [
        threading.Thread(target=stream_client_credentials, args=(server, outcome, stop))
        for _ in range(STREAM_THREADS)
    ] + [
        threading.Thread(target=stream_refresh, args=(server, chain, token, outcome, stop))
        for chain, token in enumerate(server.refresh_tokens)
    ]
    for thread in threads:
        thread.start()

    time.sleep(1.5)
    issued_before = len(outcome.access_tokens)
    proxy.cut()
    time.sleep(OUTAGE_SECONDS / 2)
    proxy.cut()  # connections opened meanwhile are refused; cut again for good measure
    time.sleep(OUTAGE_SECONDS / 2)
    proxy.restore()
    restored_at = len(outcome.statuses)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert not outcome.problems, outcome.problems[:10]
    assert 500 not in outcome.statuses
    assert 503 in outcome.statuses, "the outage was not noticed: the test proved nothing"
    assert issued_before > 0
    assert 200 in outcome.statuses[restored_at:], "the server did not recover by itself"
    # After the restore, the stream settles on success again.
    assert outcome.statuses[-STREAM_THREADS:] == [200] * STREAM_THREADS

    confirmed = outcome.access_tokens + [
        token
        for chain, tokens in outcome.chain_tokens.items()
        if chain not in outcome.replayed_chains
        for token in tokens[-2:]  # the newest access and refresh token of each live chain
    ]
    sample = confirmed if len(confirmed) <= 400 else secrets.SystemRandom().sample(confirmed, 400)
    inactive = [token[:12] for token in sample if not introspect(server, token)["active"]]
    assert not inactive, f"{len(inactive)} confirmed tokens were lost: {inactive[:5]}"
