"""A thin WSGI layer in front of Flask that answers the public documents from memory.

Flask's request machinery (request and app contexts, URL matching, before- and
after-request hooks) costs more CPU than building a JWKS or discovery response. This
layer answers a plain GET or HEAD of a registered path (no query string, no body)
itself; every other request (other methods, CORS preflights, a query string, a body,
any other path) goes to Flask unchanged.

There is still one implementation per endpoint. A package registers its endpoint's
handler (`serve`), a function of the app that returns the `Document` to send; the
endpoint's Flask view returns that same handler's document, so url_for, OPTIONS,
405 and the registry check keep working. The headers are Flask's own: whenever the
handler's document changes, it is passed once through the app's after_request hooks
(security headers, CORS, ...) in a request context of its own, and the status and
headers Flask produced are kept and sent until the document changes again. So only an
endpoint whose answer does not depend on the request may be served here: one with no
rate limit and no per-origin CORS (core/capabilities.py), which `serve` checks. When a
handler raises, Flask answers the request: its view fails the same way and its error
handlers answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response

from . import capabilities

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

EXTENSION = "authserver.hotpath"
METHODS = frozenset({"GET", "HEAD"})
# CONTENT_LENGTH of a request without a body; any other value is left to Flask.
NO_BODY = frozenset({None, "", "0"})


@dataclass(frozen=True)
class Document:
    """An endpoint's answer: the body, its media type and the endpoint's own headers."""

    body: bytes
    mimetype: str
    headers: tuple[tuple[str, str], ...] = ()

    def response(self) -> Response:
        """The document as its Flask view returns it."""
        response = Response(self.body, mimetype=self.mimetype)
        response.headers.extend(self.headers)
        return response


Handler = Callable[[Flask], Document]


@dataclass(frozen=True)
class Answer:
    """What is sent for one document: the status and headers Flask gave it, and the body."""

    document: Document
    status: str
    headers: list[tuple[str, str]]


class Route:
    """One served path: its handler and the answer for the handler's latest document."""

    def __init__(self, app: Flask, path: str, handler: Handler) -> None:
        self.app = app
        self.path = path
        self.handler = handler
        self.answer: Answer | None = None

    def current(self) -> Answer | None:
        """The answer for the handler's document now, or None when Flask must answer."""
        try:
            document = self.handler(self.app)
        except Exception:  # the view runs the same handler; Flask's error handlers answer
            return None
        answer = self.answer
        if answer is None or answer.document != document:
            answer = self.answer = self.finish(document)
        return answer

    def finish(self, document: Document) -> Answer:
        """Pass the document through the app's after_request hooks, as its view's response."""
        # A GET of the path with no request headers: the served answer must not need any.
        with self.app.test_request_context(self.path) as context:
            response = self.app.process_response(document.response())
            _, status, headers = response.get_wsgi_response(context.request.environ)
        return Answer(document, status, headers)


class HotPath:
    """WSGI middleware: registered paths answered here, everything else passed to Flask."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.routes: dict[str, Route] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = self.routes.get(environ.get("PATH_INFO", ""))
        answer = route.current() if route is not None and is_plain_read(environ) else None
        if answer is None:
            return self.wsgi_app(environ, start_response)
        start_response(answer.status, list(answer.headers))
        if environ["REQUEST_METHOD"] == "HEAD":
            return []
        return [answer.document.body]


def is_plain_read(environ: WSGIEnvironment) -> bool:
    """A GET or HEAD without a query string or a body: nothing for Flask to parse or refuse."""
    return (
        environ.get("REQUEST_METHOD") in METHODS
        and not environ.get("QUERY_STRING")
        and environ.get("CONTENT_LENGTH") in NO_BODY
        and "HTTP_TRANSFER_ENCODING" not in environ
    )


def init_app(app: Flask) -> None:
    """Put the thin layer in front of the app's WSGI callable (and of ProxyFix, if any)."""
    hot_path = HotPath(app, app.wsgi_app)
    app.extensions[EXTENSION] = hot_path
    app.wsgi_app = hot_path  # type: ignore[method-assign]


def serve(app: Flask, endpoint: str, handler: Handler) -> None:
    """Answer GET and HEAD of `endpoint`'s routes here with `handler`'s document.

    The endpoint must be registered with Flask already, on fixed paths, and be
    neither rate limited nor CORS-limited to registered origins: this layer counts no
    request and reads no request header.
    """
    registered = capabilities.endpoint(endpoint)
    if registered.rate_limit is not capabilities.RateLimit.NONE:
        raise ValueError(f"{endpoint} is rate limited: Flask must count its requests")
    if registered.cors is capabilities.Cors.REGISTERED:
        raise ValueError(f"{endpoint} answers CORS per origin: Flask must read the Origin")
    hot_path: HotPath = app.extensions[EXTENSION]
    for rule in app.url_map.iter_rules(endpoint):
        if rule.arguments or "GET" not in (rule.methods or ()):
            raise ValueError(f"{endpoint}: {rule.rule} is not a fixed path answering GET")
        hot_path.routes[rule.rule] = Route(app, rule.rule, handler)
