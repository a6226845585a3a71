"""With no users, the server says exactly how to create the first admin and client."""

from __future__ import annotations

from flask import Flask

from tests.factories import make_user


def test_setup_hint_gives_the_exact_commands_when_nobody_exists(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["setup-hint"])

    assert result.exit_code == 0
    assert "users create admin@example.com" in result.stdout
    assert "--role admin" in result.stdout
    assert "clients create --name" in result.stdout
    assert "--grant-type authorization_code" in result.stdout


def test_setup_hint_is_silent_once_a_user_exists(app: Flask) -> None:
    make_user()

    result = app.test_cli_runner().invoke(args=["setup-hint"])

    assert result.exit_code == 0
    assert result.stdout == ""
