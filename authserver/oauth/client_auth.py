"""RFC 6749 section 2.3: client authentication at every endpoint, and what a failure says.

Authlib's `ClientAuthentication` answers every failure with "The client cannot
authenticate with methods: [...]", a list that means nothing to the developer whose
secret was wrong, and an unknown client_id with "The client does not exist on this
server", which tells anyone which client_ids exist. Here every failure is section 5.2's
`invalid_client`, described in the client's terms from what the request presented
alone (a secret, a client_id only, nothing), so an unknown client and a wrong secret
read the same. Only a client that proved who it is (its secret matched) but sent it by a
method it did not register is told the method it registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749.authenticate_client import (
    authenticate_client_secret_basic,
    authenticate_client_secret_post,
    authenticate_none,
)

from ..core import capabilities

NO_CREDENTIALS = "Client authentication failed: no client credentials were sent."
WRONG_SECRET = "Client authentication failed: unknown client or wrong client secret."
NO_SECRET = (
    "Client authentication failed: unknown client, or a confidential client that sent no "
    "client secret."
)
SECRET_REQUIRED = (
    "Client authentication failed: this request needs the client secret "
    "(client_secret_basic or client_secret_post)."
)

Method = Callable[[Any, Any], Any]


def answering_none_when_unknown(method: Method) -> Method:
    """An Authlib method function that returns None for an unknown client instead of raising."""

    def authenticate(query_client: Any, request: Any) -> Any:
        try:
            return method(query_client, request)
        except InvalidClientError:
            return None

    return authenticate


class ClientAuthentication:
    """Authlib's client authentication methods by name; failures described here.

    The same interface as Authlib's `ClientAuthentication` (`register`, a call with the
    request, the methods the endpoint accepts and the endpoint's name).
    """

    def __init__(self, query_client: Callable[[str], Any]) -> None:
        self.query_client = query_client
        self.methods: dict[str, Method] = {}
        self.register(capabilities.NONE, authenticate_none)
        self.register(capabilities.CLIENT_SECRET_BASIC, authenticate_client_secret_basic)
        self.register(capabilities.CLIENT_SECRET_POST, authenticate_client_secret_post)

    def register(self, method: str, func: Method) -> None:
        self.methods[method] = answering_none_when_unknown(func)

    def __call__(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        return self.authenticate(request, methods, endpoint)

    def authenticate(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        """The client, authenticated by the one method it registered, or invalid_client.

        Section 5.2: 401 whenever HTTP Basic is accepted here (a client that sent an
        Authorization header must get one), as Authlib does.
        """
        proven: tuple[Any, str] | None = None
        for method in methods:
            client = self.methods[method](self.query_client, request)
            if client is None:
                continue
            if client.check_endpoint_auth_method(method, endpoint):
                request.auth_method = method
                return client
            if method != capabilities.NONE:
                proven = (client, method)
        status = 401 if capabilities.CLIENT_SECRET_BASIC in methods else 400
        raise InvalidClientError(
            status_code=status, description=failure_description(request, methods, proven)
        )


def failure_description(request: Any, methods: list[str], proven: tuple[Any, str] | None) -> str:
    """What a failed client authentication says, whether or not the client_id exists."""
    if proven is not None:
        client, used = proven
        return (
            f"The client is registered for token_endpoint_auth_method "
            f"{client.token_endpoint_auth_method}, but authenticated with {used}."
        )
    form = request.form
    if request.headers.get("Authorization") or form.get("client_secret"):
        return WRONG_SECRET
    # The `none` method reads client_id from the request's payload (form or query).
    payload = getattr(request, "payload", None)
    if form.get("client_id") or getattr(payload, "client_id", None):
        return NO_SECRET if capabilities.NONE in methods else SECRET_REQUIRED
    return NO_CREDENTIALS
