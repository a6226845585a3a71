"""Config: every setting parsed, defaulted, and refused with a message naming it."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from authserver.config import Config, ConfigError


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    base = {"AUTHSERVER_INSTANCE_PATH": str(tmp_path)}
    base.update({f"AUTHSERVER_{k.upper()}": v for k, v in values.items()})
    return base


def test_defaults(tmp_path: Path) -> None:
    config = Config.from_env(env(tmp_path))
    assert config.issuer == "http://127.0.0.1:5000"
    assert config.access_token_ttl == 900
    assert config.id_token_ttl == 900
    assert config.refresh_token_ttl == 30 * 24 * 3600
    assert config.authorization_code_ttl == 60
    assert config.access_token_alg == "ES256"
    assert config.database_url == f"sqlite:///{tmp_path / 'authserver.db'}"
    assert config.audience == config.issuer
    assert not config.secure_cookies


def test_development_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = Config.from_env(env(tmp_path)).secret_key
    assert len(first) >= 32
    assert Config.from_env(env(tmp_path)).secret_key == first
    mode = (tmp_path / "secret_key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"env": "production", "issuer": "https://id.example"}, "AUTHSERVER_SECRET_KEY"),
        ({"issuer": "ftp://x"}, "AUTHSERVER_ISSUER"),
        ({"issuer": "http://x/"}, "AUTHSERVER_ISSUER"),
        ({"access_token_alg": "HS256"}, "AUTHSERVER_ACCESS_TOKEN_ALG"),
        ({"access_token_ttl": "soon"}, "AUTHSERVER_ACCESS_TOKEN_TTL"),
        ({"authorization_code_ttl": "0"}, "AUTHSERVER_AUTHORIZATION_CODE_TTL"),
        ({"redis_url": "http://x"}, "AUTHSERVER_REDIS_URL"),
        ({"mail_url": "mailto:x"}, "AUTHSERVER_MAIL_URL"),
        ({"mail_sender": "cron"}, "AUTHSERVER_MAIL_SENDER"),
        ({"mail_limit_ip": "lots"}, "AUTHSERVER_MAIL_LIMIT_IP"),
        ({"mail_retention_days": "0"}, "AUTHSERVER_MAIL_RETENTION_DAYS"),
        ({"env": "staging"}, "AUTHSERVER_ENV"),
    ],
)
def test_invalid_settings_name_themselves(
    tmp_path: Path, values: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env(tmp_path, **values))


def test_production_needs_https_and_a_long_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_ISSUER"):
        Config.from_env(env(tmp_path, env="production", secret_key="s" * 40))
    with pytest.raises(ConfigError, match="AUTHSERVER_SECRET_KEY"):
        Config.from_env(
            env(tmp_path, env="production", issuer="https://id.example", secret_key="s")
        )
    config = Config.from_env(
        env(tmp_path, env="production", issuer="https://id.example", secret_key="s" * 40)
    )
    assert config.secure_cookies


def test_wsgi_start_up_with_a_bad_setting_prints_one_line(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=root,
        env={"AUTHSERVER_ACCESS_TOKEN_ALG": "none", "AUTHSERVER_INSTANCE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "AUTHSERVER_ACCESS_TOKEN_ALG" in lines[0]


def test_every_setting_is_documented_in_the_readme() -> None:
    from dataclasses import fields

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    missing = [f.name for f in fields(Config) if f"`AUTHSERVER_{f.name.upper()}`" not in readme]
    assert missing == []


def test_key_prepublication_must_outlast_every_cache(tmp_path: Path) -> None:
    # cache_ttl 30 + JWKS max-age 60: a new key may sign only after 90 s have passed.
    with pytest.raises(ConfigError, match=r"KEY_PREPUBLISH_SECONDS.*= 90 s"):
        Config.from_env(env(tmp_path, key_prepublish_seconds="90"))
    assert Config.from_env(env(tmp_path, key_prepublish_seconds="91")).jwks_max_age == 60
    assert Config.from_env(env(tmp_path)).key_prepublish_seconds == 3600
    with pytest.raises(ConfigError, match="KEY_PREPUBLISH_SECONDS"):
        Config.from_env(env(tmp_path, cache_ttl="3600"))
