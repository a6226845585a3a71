"""RFC 8628 section 3.4 and 3.5: the device polls the token endpoint with its device code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from authlib.oauth2.rfc6749 import AccessDeniedError, InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc8628 import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from authlib.oauth2.rfc8628 import DeviceCodeGrant as BaseDeviceCodeGrant
from sqlalchemy import select, true, update

from ...accounts.models import User
from ...core import capabilities
from ...core.secrets import hash_secret
from ...extensions import db, utcnow
from ..models import DeviceCode, Grant
from ..services import start_token_family
from .base import AuthlibTokenGrant

# Section 3.5: "the interval MUST be increased by 5 seconds for this and all subsequent requests".
SLOW_DOWN_STEP = 5


class DeviceCodeGrant(AuthlibTokenGrant, BaseDeviceCodeGrant):
    """Section 3.4 and 3.5: the device polls until the person decides, then redeems once."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(
        capabilities.auth_methods_for_grant(capabilities.DEVICE_CODE)
    )
    # The presented device code, and the token family (Grant row) its approval starts.
    credential: DeviceCode
    family: Grant

    def validate_token_request(self) -> None:
        """Section 3.4: the device code of the client the token endpoint authenticated.

        A device code that is unknown or was issued to another client is `invalid_grant`
        (RFC 6749 section 5.2), where Authlib answers invalid_request/unauthorized_client.
        """
        device_code = self.request.form.get("device_code")
        if not device_code:
            raise InvalidRequestError("Missing 'device_code'.")
        client = self.request.client
        credential = self.query_device_credential(device_code)
        if credential is None or credential.client_id != client.get_client_id():
            raise InvalidGrantError("Invalid 'device_code'.")
        self.credential = credential
        self.request.user = self.validate_device_credential(credential)

    def query_device_credential(self, device_code: str) -> DeviceCode | None:
        if not isinstance(device_code, str) or len(device_code) > 512:
            return None
        return db.session.scalar(
            select(DeviceCode).where(DeviceCode.device_code_hash == hash_secret(device_code))
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
        credential = self.credential
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
        credential = self.credential
        grant, token = start_token_family(credential, self.request.client, user)
        db.session.execute(
            update(DeviceCode)
            .where(DeviceCode.id == credential.id)
            .values(grant_id=grant.id)
            .execution_options(synchronize_session=False)
        )
        self.family = grant
        return token
