"""`authserver users create` makes verified users and refuses duplicates."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from authserver.accounts.models import User
from authserver.accounts.passwords import verify_password
from authserver.extensions import db
from tests.factories import PASSWORD


def find(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email))


def test_create_makes_a_verified_user_with_roles(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=[
            "users", "create", "Ada@Example.com", "--password", PASSWORD,
            "--name", "Ada Lovelace", "--role", "admin", "--role", "developer",
        ]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    user = find("ada@example.com")
    assert user is not None
    assert user.email_verified is True
    assert user.name == "Ada Lovelace"
    assert user.role_names == ["admin", "developer"]
    assert user.password_hash and verify_password(user.password_hash, PASSWORD)
    assert "ada@example.com" in result.stdout


def test_password_stdin_reads_the_first_line(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "bob@example.com", "--password-stdin"],
        input=PASSWORD + "\nignored\n",
    )

    assert result.exit_code == 0, result.output
    user = find("bob@example.com")
    assert user is not None and user.password_hash
    assert verify_password(user.password_hash, PASSWORD)


def test_a_duplicate_email_fails_with_a_clear_message(app: Flask) -> None:
    runner = app.test_cli_runner()
    runner.invoke(args=["users", "create", "carol@example.com", "--password", PASSWORD])

    result = runner.invoke(args=["users", "create", "CAROL@example.com", "--password", PASSWORD])

    assert result.exit_code != 0
    assert "already exists" in result.stderr
    assert db.session.query(User).count() == 1


def test_a_password_is_required(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["users", "create", "dan@example.com"])

    assert result.exit_code != 0
    assert "--password" in result.stderr
    assert find("dan@example.com") is None


def test_password_and_password_stdin_together_are_refused(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "eve@example.com", "--password", PASSWORD, "--password-stdin"],
        input=PASSWORD + "\n",
    )

    assert result.exit_code != 0
    assert find("eve@example.com") is None


def test_an_invalid_email_is_refused(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "create", "not an email", "--password", PASSWORD]
    )

    assert result.exit_code != 0
    assert "e-mail" in result.stderr
