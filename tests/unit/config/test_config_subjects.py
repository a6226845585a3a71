"""The settings of pairwise subjects and outgoing fetches."""

from __future__ import annotations

from pathlib import Path

import pytest

from authserver.config import Config, ConfigError
from tests.unit.config.test_config import env

PRODUCTION = {"env": "production", "issuer": "https://id.example", "secret_key": "s" * 40}


def test_subjects_are_public_by_default_and_the_key_is_generated_in_development(
    tmp_path: Path,
) -> None:
    config = Config.from_env(env(tmp_path))
    assert config.default_subject_type == "public"
    assert len(config.pairwise_secret) >= 32
    assert (tmp_path / "pairwise_secret").read_text().strip() == config.pairwise_secret
    assert Config.from_env(env(tmp_path)).pairwise_secret == config.pairwise_secret


def test_private_addresses_are_refused_in_production_unless_allowed(tmp_path: Path) -> None:
    """AUTHSERVER_FETCH_ALLOW_PRIVATE_ADDRESSES unset: allowed outside production only."""
    assert Config.from_env(env(tmp_path)).fetch_allow_private_addresses is True
    assert Config.from_env(env(tmp_path, **PRODUCTION)).fetch_allow_private_addresses is False
    allowed = env(tmp_path, fetch_allow_private_addresses="true", **PRODUCTION)
    assert Config.from_env(allowed).fetch_allow_private_addresses is True
    refused = env(tmp_path, fetch_allow_private_addresses="false")
    assert Config.from_env(refused).fetch_allow_private_addresses is False
    with pytest.raises(ConfigError, match="AUTHSERVER_FETCH_ALLOW_PRIVATE_ADDRESSES"):
        Config.from_env(env(tmp_path, fetch_allow_private_addresses="maybe"))


def test_production_generates_no_pairwise_key(tmp_path: Path) -> None:
    assert Config.from_env(env(tmp_path, **PRODUCTION)).pairwise_secret == ""


def test_pairwise_by_default_in_production_needs_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_PAIRWISE_SECRET: required"):
        Config.from_env(env(tmp_path, default_subject_type="pairwise", **PRODUCTION))
    config = Config.from_env(
        env(tmp_path, default_subject_type="pairwise", pairwise_secret="p" * 32, **PRODUCTION)
    )
    assert config.default_subject_type == "pairwise"


def test_bad_subject_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTHSERVER_DEFAULT_SUBJECT_TYPE"):
        Config.from_env(env(tmp_path, default_subject_type="ephemeral"))
    with pytest.raises(ConfigError, match="AUTHSERVER_PAIRWISE_SECRET: must be at least 32"):
        Config.from_env(env(tmp_path, pairwise_secret="short"))
