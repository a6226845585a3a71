"""RFC 8628: the device authorization grant.

A device with no browser asks the device authorization endpoint for a
`device_code` and a short `user_code` (section 3.1, 3.2), shows the code to the
person, who enters it at `verification_uri` and approves (section 3.3, the
pages in `device_views`), while the device polls the token endpoint with the
`device_code` (section 3.4, 3.5). The device code is stored only as its
SHA-256 hash; every change of a code's `status`
(pending -> approved | denied, approved -> used) is one atomic UPDATE.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc8628 import (
    DEVICE_CODE_GRANT_TYPE,
    AuthorizationPendingError,
    ExpiredTokenError,
    SlowDownError,
)
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as BaseDeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as BaseDeviceCodeGrant
from flask import current_app
from sqlalchemy import select, true, update
from sqlalchemy.exc import IntegrityError

from ..accounts.models import User
from ..clients.cache import OAuthClient
from ..extensions import db, utcnow
from ..sessions.models import LoginSession
from .models import DeviceCode
from .services import check_resources, limit_user_scope, start_token_family
from .tokens import hash_secret_value, new_secret_value

log = logging.getLogger(__name__)

# Section 6.1: consonants only (no vowels, so no words; no look-alike digits), 8 characters
# (20^8, about 34.5 bits), shown as XXXX-XXXX; case, spaces and dashes are ignored on entry.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
USER_CODE_RE = re.compile(f"[{USER_CODE_ALPHABET}]{{{USER_CODE_LENGTH}}}")
USER_CODE_ATTEMPTS = 5
# Section 3.5: "the interval MUST be increased by 5 seconds for this and all subsequent requests".
SLOW_DOWN_STEP = 5
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def normalize_user_code(value: str | None) -> str | None:
    """Section 6.1: the stored form (upper case, no separators), or None when it cannot be one."""
    if not isinstance(value, str) or len(value) > 4 * USER_CODE_LENGTH:
        return None
    # Phones may turn a typed "-" into a typographic dash (U+2010 to U+2015).
    code = re.sub(r"[\s\-\u2010-\u2015]", "", value).upper()
    return code if USER_CODE_RE.fullmatch(code) else None


def format_user_code(code: str) -> str:
    """The stored form as people read it: XXXX-XXXX."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def find_pending_code(user_code: str | None) -> DeviceCode | None:
    """A live code still waiting for a decision; None for wrong, expired or decided ones."""
    code = normalize_user_code(user_code)
    if code is None:
        return None
    return db.session.scalar(
        select(DeviceCode).where(
            DeviceCode.user_code == code,
            DeviceCode.status == "pending",
            DeviceCode.expires_at > utcnow(),
        )
    )


def approve_device_code(row: DeviceCode, session: LoginSession) -> bool:
    """Section 3.3: the signed-in person allowed the device; commits. False if already decided.

    RFC 6749 section 3.3: the scope narrows to what this person may have.
    """
    return _decide(
        row,
        status="approved",
        scope=limit_user_scope(session.user, row.scope),
        user_id=session.user_id,
        session_id=session.id,
        auth_time=session.auth_time,
        amr=list(session.amr or []),
        acr=session.acr,
    )


def deny_device_code(row: DeviceCode) -> bool:
    """Section 3.3: the person refused; the device gets access_denied. Commits."""
    return _decide(row, status="denied")


def _decide(row: DeviceCode, **values: Any) -> bool:
    decided = db.session.execute(
        update(DeviceCode)
        .where(
            DeviceCode.id == row.id,
            DeviceCode.status == "pending",
            DeviceCode.expires_at > utcnow(),
        )
        .values(**values)
    )
    db.session.commit()
    return bool(decided.rowcount == 1)  # type: ignore[attr-defined]


class DeviceAuthorizationEndpoint(BaseDeviceAuthorizationEndpoint):
    """Section 3.1 and 3.2: issue a device code and a user code to an authenticated client."""

    CLIENT_AUTH_METHODS = AUTH_METHODS

    def authenticate_client(self, request: Any) -> OAuthClient:
        """Section 3.1: authentication as registered; the client must have this grant type."""
        client: OAuthClient = super().authenticate_client(request)
        if not client.check_grant_type(DEVICE_CODE_GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the device authorization grant.")
        return client

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], Any]:
        """Section 3.2: the device authorization response."""
        client = self.authenticate_client(request)
        # RFC 6749 section 3.3: the scope granted is what the client is registered for.
        scope = client.get_allowed_scope(request.form.get("scope"))
        resources = check_resources(client, request.form.getlist("resource"))
        config = current_app.config["AUTHSERVER"]
        device_code = self.generate_device_code()
        data: dict[str, Any] = {
            "device_code": device_code,
            "verification_uri": self.get_verification_uri(),
            "expires_in": config.device_code_ttl,
            "interval": config.device_poll_interval,
        }
        for _ in range(USER_CODE_ATTEMPTS):
            data["user_code"] = self.generate_user_code()
            if self.save_device_credential(client.client_id, scope, data, resources):
                break
        else:
            raise RuntimeError("no unique user_code after several attempts")
        # Section 3.3.1: the URI with the code, for a QR code or a link on the device.
        data["verification_uri_complete"] = (
            f"{data['verification_uri']}?user_code={data['user_code']}"
        )
        return 200, data, default_json_headers

    def generate_device_code(self) -> str:
        """Section 5.2: high entropy; only its hash is stored."""
        return new_secret_value()

    def get_verification_uri(self) -> str:
        """Section 3.2: short, on our own origin, for a person to type."""
        return f"{current_app.config['AUTHSERVER'].issuer}/device"

    def save_device_credential(
        self, client_id: str, scope: str, data: dict[str, Any], resources: list[str] | None = None
    ) -> bool:
        """Store the request; False when the user code is taken (the caller draws another)."""
        now = utcnow()
        db.session.add(
            DeviceCode(
                device_code_hash=hash_secret_value(data["device_code"]),
                user_code=normalize_user_code(data["user_code"]),
                client_id=client_id,
                scope=scope,
                resource=resources or None,
                created_at=now,
                expires_at=now + timedelta(seconds=data["expires_in"]),
                interval=data["interval"],
                status="pending",
            )
        )
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            log.info("user_code collision; drawing another")
            return False
        return True


class DeviceCodeGrant(BaseDeviceCodeGrant):
    """Section 3.4 and 3.5: the device polls until the person decides, then redeems once."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_token_request(self) -> None:
        """Section 3.4: the device code, with client authentication as registered.

        A device code that is unknown or was issued to another client is `invalid_grant`
        (RFC 6749 section 5.2), where Authlib answers invalid_request/unauthorized_client.
        """
        device_code = self.request.form.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code'.")
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the device authorization grant.")
        credential = self.query_device_credential(device_code)
        if credential is None or credential.client_id != client.get_client_id():
            raise InvalidGrantError("Invalid 'device_code'.")
        self.request.client = client
        self.request.credential = credential
        self.request.user = self.validate_device_credential(credential)

    def query_device_credential(self, device_code: str) -> DeviceCode | None:
        if not isinstance(device_code, str) or len(device_code) > 512:
            return None
        return db.session.scalar(
            select(DeviceCode).where(DeviceCode.device_code_hash == hash_secret_value(device_code))
        )

    def validate_device_credential(self, credential: DeviceCode) -> User:
        """Section 3.5: the answer follows where the person is in the flow."""
        if credential.expires_at <= utcnow():
            raise ExpiredTokenError("The device code has expired.")
        if credential.status == "denied":
            raise AccessDeniedError("The request was denied.")
        if credential.status == "pending":
            self.record_poll(credential)
        return self.redeem(credential)

    def record_poll(self, credential: DeviceCode) -> None:
        """Section 3.5: authorization_pending, or slow_down (and a longer interval) when too fast.

        The poll is committed even though the answer is an error, so the next poll is
        measured from this one.
        """
        # Sub-second precision: whole seconds would call an on-time poll early.
        now = datetime.now(UTC)
        last = credential.last_polled_at
        too_fast = last is not None and now - last < timedelta(seconds=credential.interval)
        if not too_fast:
            # Compare-and-set on the previous poll time: of two concurrent polls, one is early.
            unchanged = DeviceCode.last_polled_at.is_not_distinct_from(last)
            too_fast = not self._update_pending(credential, unchanged, last_polled_at=now)
        if too_fast:
            slower = DeviceCode.interval + SLOW_DOWN_STEP
            # False only when the person decided meanwhile: then the next poll has the answer.
            too_fast = self._update_pending(credential, true(), last_polled_at=now, interval=slower)
        db.session.commit()
        if too_fast:
            raise SlowDownError("Polling too fast: wait longer between requests.")
        raise AuthorizationPendingError("The person has not yet approved the request.")

    def _update_pending(self, credential: DeviceCode, condition: Any, **values: Any) -> bool:
        result = db.session.execute(
            update(DeviceCode)
            .where(DeviceCode.id == credential.id, DeviceCode.status == "pending", condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def redeem(self, credential: DeviceCode) -> User:
        """Section 3.5: tokens once; approved -> used atomically, a second redemption fails."""
        used = db.session.execute(
            update(DeviceCode)
            .where(DeviceCode.id == credential.id, DeviceCode.status == "approved")
            .values(status="used")
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrantError("The device code was already used.")
        user = db.session.get(User, credential.user_id)
        if user is None or not user.is_active:
            raise InvalidGrantError("The device code is no longer valid.")
        return user

    @hooked
    def create_token_response(self) -> tuple[int, dict[str, Any], Any]:
        """Section 3.5: an RFC 6749 section 5.1 response; OpenIDConnect adds the id_token."""
        credential: DeviceCode = self.request.credential
        token = self.generate_token(user=self.request.user, scope=credential.scope)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def generate_token(
        self,
        user: Any = None,
        scope: Any = None,
        grant_type: Any = None,
        expires_in: Any = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """Start the token family for this approval and issue its first tokens."""
        credential: DeviceCode = self.request.credential
        grant, token = start_token_family(credential, self.request.client, user)
        db.session.execute(
            update(DeviceCode)
            .where(DeviceCode.id == credential.id)
            .values(grant_id=grant.id)
            .execution_options(synchronize_session=False)
        )
        self.request.grant = grant
        return token
