"""OpenID Connect RP-Initiated Logout 1.0: the end_session_endpoint at /logout.

https://openid.net/specs/openid-connect-rpinitiated-1_0.html

The request is checked in small named steps (`PIPELINE`), then one of three
things happens:

- verified (a valid `id_token_hint` for the signed-in person, or for nobody
  signed in any more): sign out, then go to the registered
  `post_logout_redirect_uri` with `state`, or to the "signed out" page;
- not verified: the confirmation page, whose form (with a CSRF token) posts
  the same parameters back with `confirm`; that POST signs out and continues
  as above;
- invalid: an error page, never a redirect (section 4); a signed-in person may still
  sign out there.

Without an `id_token_hint` the client is named by `client_id`, or else by a
`post_logout_redirect_uri` that exactly one client registered (`check_client`).

Our own "Sign out" link is the same endpoint without parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit, urlunsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from ..accounts.models import User
from ..audit import record
from ..clients.cache import OAuthClient, load_client
from ..clients.redirect_uris import redirect_uri_allowed
from ..clients.services import client_ids_with_post_logout_redirect_uri
from ..extensions import csrf, utcnow
from ..sessions.services import current_session, current_user, end_session
from .frontchannel import FRAME_WAIT_SECONDS, content_security_policy, frontchannel_logout_uris
from .id_token_hint import (
    MAX_ID_TOKEN_LENGTH,
    IdTokenHint,
    InvalidIdTokenHint,
    verify_id_token_hint,
)
from .subjects import is_subject_of

bp = Blueprint("logout", __name__)
log = logging.getLogger(__name__)

# Section 2: the request parameters; anything else is ignored.
PARAMETERS = (
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
)
# The confirmation form's marker; a POST carrying it (or a CSRF token) is ours.
CONFIRM = "confirm"
INVALID_TITLE = "This sign-out link does not work"
MAX_PARAMETER_LENGTH = 2048


class LogoutError(Exception):
    """Section 4: a request the OP must not act on; the message is shown to the person."""


@dataclass
class LogoutRequest:
    """One RP-Initiated Logout request, filled in by the PIPELINE steps."""

    params: dict[str, str]
    hint: IdTokenHint | None = None
    client: OAuthClient | None = None
    post_logout_redirect_uri: str | None = None
    form_fields: list[tuple[str, str]] = field(default_factory=list)

    @property
    def state(self) -> str | None:
        return self.params.get("state") or None


def read_parameters(source: MultiDict[str, str]) -> dict[str, str]:
    """Section 2: GET query or POST form; each parameter at most once, of sane length."""
    params: dict[str, str] = {}
    for name in PARAMETERS:
        values = source.getlist(name)
        if len(values) > 1:
            raise LogoutError(f"The sign-out request repeats the parameter {name}.")
        if not values or values[0] == "":
            continue
        limit = MAX_ID_TOKEN_LENGTH if name == "id_token_hint" else MAX_PARAMETER_LENGTH
        if len(values[0]) > limit or "\x00" in values[0]:
            raise LogoutError(f"The sign-out request has an invalid {name}.")
        params[name] = values[0]
    return params


def check_id_token_hint(req: LogoutRequest) -> None:
    """Section 2: the hint must be an ID Token we issued, signed with one of our keys.

    An expired hint is accepted ("even when the exp time has passed"); the OP need
    not be an audience of it. An access token signed with the same keys is not an
    ID Token (`typ`): `verify_id_token_hint` decides, as it does for /authorize.
    """
    value = req.params.get("id_token_hint")
    if value is None:
        return
    try:
        req.hint = verify_id_token_hint(value)
    except InvalidIdTokenHint:
        raise LogoutError(
            "The sign-out link carries an ID Token this server did not issue."
        ) from None


def check_client(req: LogoutRequest) -> None:
    """Section 2: the client is the hint's azp or aud, or client_id; when both, they agree.

    Without either, a post_logout_redirect_uri that exactly one client registered names
    that client (section 3 asks only that the URI be registered; a relying party that
    sends neither hint nor client_id is still identified, and the person confirms).
    """
    client_id = req.params.get("client_id")
    if req.hint is not None:
        hinted = _hinted_client_id(req.hint, client_id)
        if hinted is None:
            raise LogoutError("The sign-out link names a different app than its ID Token.")
        client_id = hinted
    if client_id is None:
        client_id = _client_registering(req.params.get("post_logout_redirect_uri"))
    if client_id is None:
        return
    req.client = load_client(client_id)
    if req.client is None:
        raise LogoutError("The app that sent you here is not registered with this server.")


def _client_registering(uri: str | None) -> str | None:
    """The one active client that registered this post_logout_redirect_uri, if exactly one."""
    if uri is None:
        return None
    client_ids = client_ids_with_post_logout_redirect_uri(uri)
    return client_ids[0] if len(client_ids) == 1 else None


def _hinted_client_id(hint: IdTokenHint, client_id: str | None) -> str | None:
    """The client the ID Token was issued to, if `client_id` (when given) matches it."""
    if hint.azp is not None:
        issued_to = hint.azp
    elif client_id is not None:
        issued_to = client_id if client_id in hint.audiences else ""
    else:
        issued_to = hint.audiences[0] if len(hint.audiences) == 1 else ""
    if not issued_to or (client_id is not None and client_id != issued_to):
        return None
    return issued_to


def check_post_logout_redirect_uri(req: LogoutRequest) -> None:
    """Section 3: only a URI registered for this very client, compared as redirect URIs are
    (clients/redirect_uris.py: exactly, but a loopback URI's port may vary, RFC 8252 7.3)."""
    uri = req.params.get("post_logout_redirect_uri")
    if uri is None:
        return
    if req.client is None:
        raise LogoutError("The sign-out link does not say which app to return to.")
    if not redirect_uri_allowed(req.client.post_logout_redirect_uris, uri):
        raise LogoutError(
            "The sign-out link asks to continue to an address that is not registered for "
            f"{req.client.client_name}."
        )
    req.post_logout_redirect_uri = uri


def keep_form_fields(req: LogoutRequest) -> None:
    """The parameters the confirmation form posts back (checked again on that POST)."""
    req.form_fields = [(name, req.params[name]) for name in PARAMETERS if name in req.params]


PIPELINE: tuple[Callable[[LogoutRequest], None], ...] = (
    check_id_token_hint,
    check_client,
    check_post_logout_redirect_uri,
    keep_form_fields,
)


def validate_logout_request(source: MultiDict[str, str]) -> LogoutRequest:
    """Run every step; raises LogoutError for a request the OP must not act on."""
    req = LogoutRequest(read_parameters(source))
    for step in PIPELINE:
        step(req)
    return req


def is_verified(req: LogoutRequest, user: User | None) -> bool:
    """Section 2: sign out without asking only for a recent hint about the signed-in person.

    The OP "MUST ask" when there is no id_token_hint or it does not belong to the
    signed-in End-User. A hint issued before any still-live session could have
    started cannot be about the current one, so it is confirmed too.
    """
    hint = req.hint
    if hint is None:
        return False
    # OIDC Core section 8: the hint's `sub` is the one its client (req.client) knows.
    if user is not None and (req.client is None or not is_subject_of(hint.sub, user, req.client)):
        return False
    session_ttl = current_app.config["AUTHSERVER"].session_ttl
    return hint.iat is None or hint.iat >= int(utcnow().timestamp()) - session_ttl


def nothing_to_confirm(req: LogoutRequest, user: User | None) -> bool:
    """Nobody is signed in and nobody is to be sent anywhere: just say so."""
    return user is None and req.post_logout_redirect_uri is None


def post_logout_location(req: LogoutRequest) -> str:
    """Section 3: the registered URI with `state` added to its query, or our own page."""
    if req.post_logout_redirect_uri is None:
        return url_for("logout.signed_out")
    if req.state is None:
        return req.post_logout_redirect_uri
    parts = urlsplit(req.post_logout_redirect_uri)
    extra = urlencode({"state": req.state})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


# --- views ---------------------------------------------------------------------------


@bp.route("/logout", methods=["GET", "POST"])
@csrf.exempt  # relying parties may POST here (section 2); our own form is checked below
def logout() -> ResponseReturnValue:
    """Section 2: the end_session_endpoint, for relying parties and our "Sign out" link."""
    confirming = request.method == "POST" and (
        CONFIRM in request.form or "csrf_token" in request.form
    )
    if confirming:
        csrf.protect()  # a bad or missing token raises CSRFError: the 400 error page
    source = request.form if request.method == "POST" else request.args
    user = current_user()
    try:
        req = validate_logout_request(source)
    except LogoutError as error:
        log.info("refused logout request: %s", error)
        page = render_template(
            "logout/error.html", title=INVALID_TITLE, message=str(error), status=400
        )
        return page, 400
    if confirming or is_verified(req, user):
        return _sign_out(req, user)
    if nothing_to_confirm(req, user):
        return render_template("logout/signed_out.html")
    return render_template("logout/confirm.html", req=req, user=user, client=req.client)


@bp.route("/logout/done")
def signed_out() -> ResponseReturnValue:
    """The "You are signed out" page, with a way back."""
    if current_user() is not None:
        return redirect(url_for("logout.logout"), 303)
    return render_template("logout/signed_out.html")


def _sign_out(req: LogoutRequest, user: User | None) -> ResponseReturnValue:
    """End this browser's session, then continue to the relying party or our page.

    Front-Channel Logout 1.0 section 4: when clients of the session registered a
    `frontchannel_logout_uri`, a page framing each of them comes first and continues
    to the same place.
    """
    if user is not None:  # end_session commits the event with the revoked session
        record("signout", subject=user.sub, client_id=req.client.client_id if req.client else None)
    frames = frontchannel_logout_uris(current_session())
    end_session()
    if user is not None:
        log.info(
            "signed out: sub=%s client_id=%s", user.sub, req.client.client_id if req.client else "-"
        )
    if not frames:
        return redirect(post_logout_location(req), 303 if request.method == "POST" else 302)
    page = render_template(
        "logout/frontchannel.html",
        frames=frames,
        next_url=post_logout_location(req),
        wait_seconds=FRAME_WAIT_SECONDS,
    )
    return page, 200, {"Content-Security-Policy": content_security_policy(frames)}
