"""RFC 8628 section 3.1 and 3.2: the device authorization endpoint."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import UnauthorizedClientError
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint as BaseDeviceAuthorizationEndpoint
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ...clients.cache import OAuthClient
from ...core import capabilities
from ...core.secrets import hash_secret, new_token
from ...extensions import db, utcnow
from ..device import normalize_user_code
from ..models import DeviceCode
from ..services import check_resources

log = logging.getLogger(__name__)
USER_CODE_ATTEMPTS = 5


class DeviceAuthorizationEndpoint(BaseDeviceAuthorizationEndpoint):
    """Section 3.1 and 3.2: issue a device code and a user code to an authenticated client."""

    CLIENT_AUTH_METHODS = list(capabilities.auth_methods("device.device_authorization"))

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
        return new_token()

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
                device_code_hash=hash_secret(data["device_code"]),
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
