"""`authserver keys reencrypt`: a secret rotation without keeping the old secret forever."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from authserver.accounts.totp import begin_enrolment, pending_secret
from authserver.extensions import db
from authserver.keys import current_keyring
from tests.conftest import TEST_SECRET
from tests.factories import make_user

NEW_SECRET = "rotated-secret-" + "y" * 40


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_reencrypt_moves_keys_and_totp_secrets_to_the_new_secret(app_factory: Any) -> None:
    old = app_factory()
    with old.app_context():
        user = make_user()
        user_id = user.id
        secret = begin_enrolment(user)
        db.session.commit()  # the enrolment request's edge
        kid, _ = current_keyring().signing_key("ES256")

    try:
        rotating = app_factory(secret_key=NEW_SECRET, secret_key_fallbacks=(TEST_SECRET,))
        with rotating.app_context():
            result = rotating.test_cli_runner().invoke(args=["keys", "reencrypt"])
            assert result.exit_code == 0, result.output
            assert "two-step secrets" in result.output

        # Without the old secret at all, everything still opens.
        rotated = app_factory(secret_key=NEW_SECRET)
        with rotated.app_context():
            from authserver.accounts.models import User

            again = db.session.get(User, user_id)
            assert pending_secret(again) == secret
            assert pyotp.TOTP(secret).now()
            assert current_keyring().signing_key("ES256")[0] == kid
    finally:
        # The signing keys outlive this test: put them back under the suite's secret.
        back = app_factory(secret_key=TEST_SECRET, secret_key_fallbacks=(NEW_SECRET,))
        with back.app_context():
            assert back.test_cli_runner().invoke(args=["keys", "reencrypt"]).exit_code == 0
