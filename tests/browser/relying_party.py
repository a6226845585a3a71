"""A tiny relying party for the browser tests: where the browser starts and lands.

It is served on its own loopback port and named by `localhost`, so the server
(on 127.0.0.1) and the relying party are different sites, as they are in real
life: the session cookie only reaches /authorize through SameSite=Lax's top-level
navigation rule.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from werkzeug.wrappers import Request, Response

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Test RP</title></head>
<body><main><h1>{title}</h1>{body}</main></body></html>"""


@dataclass
class RelyingParty:
    """Records every callback it receives; `url` is set once it is served."""

    url: str = ""
    callbacks: list[dict[str, str]] = field(default_factory=list)
    # The callbacks that came as a POST (OAuth 2.0 Form Post Response Mode), also in callbacks.
    posted_callbacks: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)
    # OpenID Connect Front-Channel Logout 1.0: each load of the frontchannel_logout_uri.
    frontchannel_logouts: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def redirect_uri(self) -> str:
        return self.url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.url + "/signed-out"

    @property
    def frontchannel_logout_uri(self) -> str:
        return self.url + "/frontchannel-logout"

    def start_url(self, target: str) -> str:
        """The relying party's page with a "Sign in" link to `target`."""
        return f"{self.url}/?to={quote(target, safe='')}"

    def frame_url(self, target: str) -> str:
        """A page of the relying party that tries to frame `target`."""
        return f"{self.url}/frame?src={quote(target, safe='')}"

    def reset(self) -> None:
        with self._lock:
            self.callbacks.clear()
            self.posted_callbacks.clear()
            self.logouts.clear()
            self.frontchannel_logouts.clear()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """WSGI: record what arrives and show a one-line page about it."""
        request = Request(environ)
        params = dict(parse_qsl(request.query_string.decode(), keep_blank_values=True))
        if request.method == "POST" and request.path == "/callback":
            # Form Post Response Mode section 2: the parameters come in the body.
            params = dict(request.form.items())
            with self._lock:
                self.posted_callbacks.append(params)
        route = {
            "/": self._start,
            "/callback": self._callback,
            "/signed-out": self._signed_out,
            "/frame": self._frame,
            "/careless": self._careless,
            "/frontchannel-logout": self._frontchannel_logout,
        }.get(request.path)
        title, body = route(params) if route else ("Not found", "")
        response = Response(PAGE.format(title=title, body=body), mimetype="text/html")
        return response(environ, start_response)

    def _start(self, params: dict[str, str]) -> tuple[str, str]:
        to = html.escape(params.get("to", ""))
        return "Test RP", f'<p><a id="sign-in" href="{to}">Sign in with authserver</a></p>'

    def _callback(self, params: dict[str, str]) -> tuple[str, str]:
        with self._lock:
            self.callbacks.append(params)
        if "code" in params:
            return "Signed in", "<p>The relying party received a code.</p>"
        error = html.escape(params.get("error", "?"))
        return "Sign-in failed", f"<p>Error: <code>{error}</code></p>"

    def _signed_out(self, params: dict[str, str]) -> tuple[str, str]:
        with self._lock:
            self.logouts.append(params)
        return "Signed out", "<p>You are signed out of the relying party.</p>"

    def _frontchannel_logout(self, params: dict[str, str]) -> tuple[str, str]:
        with self._lock:
            self.frontchannel_logouts.append(params)
        return "Logged out here too", "<p>The relying party ended its own session.</p>"

    def _frame(self, params: dict[str, str]) -> tuple[str, str]:
        src = html.escape(params.get("src", ""))
        frame = f'<iframe id="victim" title="victim" src="{src}" width="600" height="400"></iframe>'
        return "Framing attempt", frame

    def _careless(self, params: dict[str, str]) -> tuple[str, str]:
        """A page with what the checks must catch: no CSRF token, an unlabelled input."""
        return "Careless page", '<form method="post" action="/"><input name="q"></form>'
