"""Two-step verification services: RFC 6238 codes, the encrypted secret, recovery codes."""

from __future__ import annotations

import re
import time
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from authserver.accounts import totp
from authserver.accounts.models import RecoveryCode, User
from authserver.extensions import db
from tests.factories import make_user

RECOVERY_CODE_RE = re.compile(r"^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{2}$")


def enrolled(email: str = "alice@example.com") -> tuple[User, str, list[str]]:
    """A person with two-step verification on: (user, secret, recovery codes)."""
    user = make_user(email=email)
    secret = totp.begin_enrolment(user)
    now = totp.current_step()
    codes = totp.confirm_enrolment(user, pyotp.TOTP(secret).generate_otp(now))
    db.session.commit()  # as the confirming request would
    return user, secret, codes


def code_at(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret).generate_otp(step))


def test_the_acr_values_are_one_for_password_and_two_for_two_step() -> None:
    assert (totp.ACR_PASSWORD, totp.ACR_TWO_STEP) == ("1", "2")
    assert totp.AMR_TOTP == ("pwd", "otp", "mfa")
    assert totp.AMR_RECOVERY_CODE == ("pwd", "mfa")


def test_the_secret_is_stored_encrypted(app: Flask) -> None:
    user = make_user()
    secret = totp.begin_enrolment(user)
    stored = db.session.scalar(select(User.totp_secret_encrypted).where(User.id == user.id))
    assert stored is not None and secret not in stored
    assert len(secret) == 32  # 160 bits of base32
    assert totp.decrypt_secret(stored) == secret
    assert user.totp_enabled_at is None and not totp.is_enabled(user)


def test_a_secret_made_under_a_fallback_key_still_decrypts(app_factory: Any) -> None:
    old = app_factory(secret_key="old-secret-" + "o" * 40)
    with old.app_context():
        token = totp.encrypt_secret("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    rotated = app_factory(
        secret_key="new-secret-" + "n" * 40, secret_key_fallbacks=("old-secret-" + "o" * 40,)
    )
    with rotated.app_context():
        assert totp.decrypt_secret(token) == "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    other = app_factory(secret_key="other-secret-" + "z" * 40)
    with other.app_context():
        assert totp.decrypt_secret(token) is None


def test_codes_one_step_either_side_are_accepted(app: Flask) -> None:
    secret = pyotp.random_base32()
    now = time.time()
    step = totp.current_step(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, code_at(secret, step + offset), now) == step + offset
    for offset in (-3, -2, 2, 3):
        assert totp.matching_step(secret, code_at(secret, step + offset), now) is None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12 34"])
def test_malformed_codes_never_match(typed: str) -> None:
    assert totp.matching_step(pyotp.random_base32(), typed) is None


def test_a_code_with_spaces_is_read_as_its_digits() -> None:
    assert totp.normalize_totp(" 123 456 ") == "123456"


def test_confirming_with_a_wrong_code_leaves_two_step_off(app: Flask) -> None:
    user = make_user()
    secret = totp.begin_enrolment(user)
    wrong = code_at(secret, totp.current_step() + 5)
    with pytest.raises(totp.TwoStepError):
        totp.confirm_enrolment(user, wrong)
    assert not totp.is_enabled(user)
    assert totp.remaining_recovery_codes(user) == 0


def test_confirming_turns_two_step_on_with_ten_recovery_codes(app: Flask) -> None:
    user, _, codes = enrolled()
    assert totp.is_enabled(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(RECOVERY_CODE_RE.match(code) for code in codes)
    stored = db.session.scalars(select(RecoveryCode.code_hash)).all()
    assert len(stored) == 10
    assert not {c.replace("-", "") for c in codes} & set(stored)
    assert all(re.fullmatch(r"[0-9a-f]{64}", digest) for digest in stored)


def test_a_code_is_accepted_once_and_earlier_steps_never_again(app: Flask) -> None:
    user, secret, _ = enrolled()
    step = totp.current_step() + 1
    assert totp.verify_totp(user, code_at(secret, step))
    assert not totp.verify_totp(user, code_at(secret, step))
    assert not totp.verify_totp(user, code_at(secret, step - 1))
    db.session.commit()  # the request's edge; the UPDATE bypassed the loaded row
    assert db.session.get(User, user.id).totp_last_step == step


def test_a_recovery_code_works_once(app: Flask) -> None:
    user, _, codes = enrolled()
    assert totp.use_recovery_code(user, codes[0].upper().replace("-", " "))
    assert not totp.use_recovery_code(user, codes[0])
    assert totp.use_recovery_code(user, codes[1])
    assert totp.remaining_recovery_codes(user) == 8


def test_a_recovery_code_belongs_to_one_person(app: Flask) -> None:
    _, _, codes = enrolled()
    bob, _, _ = enrolled("bob@example.com")
    assert not totp.use_recovery_code(bob, codes[0])


def test_new_recovery_codes_replace_the_old_ones(app: Flask) -> None:
    user, _, old = enrolled()
    new = totp.regenerate_recovery_codes(user)
    assert not set(old) & set(new)
    assert not totp.use_recovery_code(user, old[0])
    assert totp.use_recovery_code(user, new[0])


def test_recovery_codes_survive_a_secret_rotation(app_factory: Any, app: Flask) -> None:
    user, _, codes = enrolled()
    from tests.conftest import TEST_SECRET

    rotated = app_factory(secret_key="new-secret-" + "n" * 40, secret_key_fallbacks=(TEST_SECRET,))
    with rotated.app_context():
        again = db.session.get(User, user.id)
        assert totp.use_recovery_code(again, codes[0])


def test_too_many_wrong_codes_refuse_even_the_right_one(app: Flask) -> None:
    user, secret, _ = enrolled()
    wrong = code_at(secret, totp.current_step() + 10)
    for _ in range(totp.MAX_FAILURES):
        assert totp.check_second_factor(user, wrong, "totp") is None
    with pytest.raises(totp.TooManyFailures):
        totp.check_second_factor(user, code_at(secret, totp.current_step() + 1), "totp")


def test_a_right_code_clears_earlier_failures(app: Flask) -> None:
    user, secret, _ = enrolled()
    wrong = code_at(secret, totp.current_step() + 10)
    for _ in range(totp.MAX_FAILURES - 1):
        totp.check_second_factor(user, wrong, "totp")
    right = code_at(secret, totp.current_step() + 1)
    assert totp.check_second_factor(user, right, "totp") == totp.AMR_TOTP
    assert not totp.too_many_failures(user)


def test_turning_off_forgets_the_secret_and_the_codes(app: Flask) -> None:
    user, _, codes = enrolled()
    totp.disable(user)
    assert not totp.is_enabled(user)
    assert user.totp_secret_encrypted is None and user.totp_last_step is None
    assert not totp.use_recovery_code(user, codes[0])
    assert db.session.scalars(select(RecoveryCode)).all() == []


def test_the_provisioning_uri_names_the_issuer_and_the_email(app: Flask) -> None:
    user = make_user()
    secret = totp.begin_enrolment(user)
    uri = totp.provisioning_uri(user, secret)
    parsed = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/")
    assert parsed.secret == secret and parsed.name == "alice@example.com"
    assert parsed.issuer == app.config["AUTHSERVER"].product_name
    assert parsed.digits == 6 and parsed.interval == 30


def test_the_qr_code_is_svg_without_inline_styles() -> None:
    svg = totp.qr_svg("otpauth://totp/Example:alice%40example.com?secret=JBSWY3DPEHPK3PXP")
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "style" not in svg.lower() and "<script" not in svg.lower()
