"""Every AUTHSERVER_* setting, typed and defaulted, in one place.

`Config.from_env()` reads the environment once, at start-up. An invalid value
raises `ConfigError` whose message names the setting, so the process fails
with one clear line instead of a traceback.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PREFIX = "AUTHSERVER_"
SUPPORTED_ACCESS_TOKEN_ALGS = ("ES256", "RS256")
# The JWKS's Cache-Control max-age never exceeds this (seconds).
JWKS_MAX_AGE_CAP = 300


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names it."""


def _bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{PREFIX}{name}: expected true or false, got {raw!r}")


def _whole_number(name: str, raw: str, minimum: int = 1) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{PREFIX}{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{PREFIX}{name}: must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Config:
    """The server's settings. Field names map to AUTHSERVER_<NAME> variables."""

    # development or production; production refuses to start without a real secret.
    env: str = "development"
    # Public base URL; the `iss` of every token and the base of every endpoint.
    issuer: str = "http://127.0.0.1:5000"
    # SQLAlchemy URL; empty means SQLite in the instance folder.
    database_url: str = ""
    # Signs cookies and encrypts private keys at rest. Generated in development.
    secret_key: str = ""
    # Older secrets still accepted for decryption while rotating (comma-separated).
    secret_key_fallbacks: tuple[str, ...] = ()
    # Redis for rate limits and shared caches; empty means per-process memory.
    redis_url: str = ""
    # smtp:// or smtps:// URL; empty means a file outbox in the instance folder.
    mail_url: str = ""
    # Who delivers the mail outbox: "thread" (a thread in each serving process) or
    # "external" (only `authserver mail deliver --follow`, run as its own service).
    mail_sender: str = "thread"
    # Mail sends allowed per recipient, per account and per client IP (the `limits`
    # notation); over them a message is stored as suppressed. Security notices to an
    # account's own address are never limited. Off with ratelimit_enabled=false.
    mail_limit_recipient: str = "5/hour;20/day"
    mail_limit_account: str = "20/hour;100/day"
    mail_limit_ip: str = "50/hour;500/day"
    # Sent, failed and suppressed outbox rows older than this are purged by `cleanup`.
    mail_retention_days: int = 7
    # Who delivers back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0):
    # "thread" (a thread in each serving process) or "external" (only
    # `authserver logout deliver --follow`, run as its own service).
    backchannel_logout_sender: str = "thread"
    # Seconds one back-channel logout POST may take (connect, send, answer) before it
    # counts as failed and is retried later.
    backchannel_logout_timeout: int = 5
    # Where SQLite, the generated secret and the mail outbox live.
    instance_path: str = ""
    # Lifetimes, in seconds.
    access_token_ttl: int = 15 * 60
    id_token_ttl: int = 15 * 60
    refresh_token_ttl: int = 30 * 24 * 3600
    authorization_code_ttl: int = 60
    session_ttl: int = 14 * 24 * 3600
    # Signing algorithm for RFC 9068 access tokens: ES256 (fast) or RS256.
    access_token_alg: str = "ES256"
    # `aud` of access tokens requested without a `resource` (RFC 8707); defaults to the issuer.
    default_audience: str = ""
    # How long an instance trusts its in-memory key and client caches before re-reading.
    cache_ttl: int = 30
    # How long a rotated signing key is published in the JWKS before it signs anything:
    # longer than every instance's key cache (cache_ttl) plus the JWKS max-age we send,
    # and than what common relying-party libraries cache a JWKS for whatever max-age says
    # (jose, jwks-rsa: 10 min; mod_auth_openidc: 1 h). Checked at start-up.
    key_prepublish_seconds: int = 3600
    # argon2id cost (OWASP: m=19 MiB, t=2, p=1).
    argon2_memory_cost: int = 19 * 1024
    argon2_time_cost: int = 2
    # Product name, logo and accent colour of the hosted pages.
    product_name: str = "authserver"
    logo_url: str = "/static/img/logo.svg"
    accent_color: str = "#3b5bdb"
    # Whether people may create their own accounts on the sign-up page.
    signup: bool = True
    # Sender of the server's e-mails.
    mail_from: str = "authserver <no-reply@localhost>"
    # Lifetimes of e-mailed links, in seconds.
    password_reset_ttl: int = 30 * 60
    email_verification_ttl: int = 24 * 3600
    # Rate limits (`limits` notation, ";"-separated): in Redis when redis_url is set.
    ratelimit_enabled: bool = True
    # When Redis is down: refuse limited requests (true) or fall back to per-process memory.
    ratelimit_fail_closed: bool = False
    # Per client IP and page on the pages people type into: sign-in, sign-up, reset, two-step,
    # device code, and the account pages that check a password or send mail.
    ratelimit_pages: str = "20/minute;300/hour"
    # Per client and IP (else per IP) on the token, introspection and revocation endpoints.
    ratelimit_api: str = "600/minute"
    # Per account: failed passwords before sign-in is locked for lockout_duration seconds.
    lockout_threshold: int = 10
    lockout_duration: int = 15 * 60
    # Audit events older than this many days are purged by `authserver cleanup`.
    audit_retention_days: int = 365
    # RFC 7591/7592 dynamic client registration, for holders of an initial access token.
    dynamic_registration: bool = False
    # The admin console asks for the password again after this many seconds.
    admin_reauth_after: int = 15 * 60
    # RFC 8628: device code lifetime and minimum polling interval, in seconds.
    device_code_ttl: int = 10 * 60
    device_poll_interval: int = 5
    # Trust X-Forwarded-* from this many proxies (0 = none).
    proxy_fix: int = 0
    # OIDC Core section 8: the subject type of a client registered without one
    # (public or pairwise); each client keeps the type it was registered with.
    default_subject_type: str = "public"
    # Keys the HMAC of pairwise subject identifiers (oidc/subjects.py). Changing it changes
    # every pairwise `sub`. Generated in development; in production pairwise is offered
    # only when it is set.
    pairwise_secret: str = ""
    # Whether the server's own requests (core/fetch.py: sector_identifier_uri fetches,
    # back-channel logout POSTs) may reach loopback, private, link-local and reserved
    # addresses. Unset: allowed outside production, refused in production.
    fetch_allow_private_addresses: bool | None = None
    # A PEM file of CA certificates trusted for those requests instead of the system's.
    fetch_ca_file: str = ""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def audience(self) -> str:
        return self.default_audience or self.issuer

    @property
    def jwks_max_age(self) -> int:
        """The JWKS's Cache-Control max-age: a rotation is seen soon, and within the
        pre-publication time (`_check_key_schedule`)."""
        return min(2 * self.cache_ttl, JWKS_MAX_AGE_CAP)

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @classmethod
    def from_env(
        cls, environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None
    ) -> Config:
        """Build the config from AUTHSERVER_* variables, then apply `overrides`."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name.upper(), f.type, raw)
        values.update(overrides or {})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"{PREFIX}{sorted(unknown)[0].upper()}: unknown setting")
        return cls(**values).finish()

    def finish(self) -> Config:
        """Check every value and fill in the derived defaults."""
        if self.env not in ("development", "production", "testing"):
            raise ConfigError(f"{PREFIX}ENV: expected development, production or testing")
        self._check_issuer()
        if self.access_token_alg not in SUPPORTED_ACCESS_TOKEN_ALGS:
            raise ConfigError(
                f"{PREFIX}ACCESS_TOKEN_ALG: expected one of "
                + ", ".join(SUPPORTED_ACCESS_TOKEN_ALGS)
            )
        for name in POSITIVE_SETTINGS:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{PREFIX}{name.upper()}: must be greater than zero")
        self._check_services()
        self._check_pages()
        self._check_key_schedule()
        for name in LIMIT_SETTINGS:
            _check_limits(name, getattr(self, name))
        return self._with_derived_defaults()

    def _check_issuer(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{PREFIX}ISSUER: expected an http(s) URL, got {self.issuer!r}")
        if parts.query or parts.fragment or self.issuer.endswith("/"):
            raise ConfigError(f"{PREFIX}ISSUER: no query, fragment or trailing slash allowed")
        if self.is_production and parts.scheme != "https":
            raise ConfigError(f"{PREFIX}ISSUER: must be https in production")

    def _check_key_schedule(self) -> None:
        """A new key signs only once every cache that could lack it has expired: each
        instance's key cache (cache_ttl) and a relying party's JWKS fetched just before
        the rotation (jwks_max_age)."""
        floor = self.cache_ttl + self.jwks_max_age
        if self.key_prepublish_seconds <= floor:
            raise ConfigError(
                f"{PREFIX}KEY_PREPUBLISH_SECONDS: must exceed {PREFIX}CACHE_TTL plus the "
                f"JWKS max-age ({self.cache_ttl} + {self.jwks_max_age} = {floor} s), "
                f"got {self.key_prepublish_seconds}"
            )

    def _check_services(self) -> None:
        if self.redis_url and urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"{PREFIX}REDIS_URL: expected a redis:// URL")
        if self.mail_url and urlsplit(self.mail_url).scheme not in ("smtp", "smtps"):
            raise ConfigError(f"{PREFIX}MAIL_URL: expected an smtp:// or smtps:// URL")
        if self.mail_sender not in ("thread", "external"):
            raise ConfigError(f"{PREFIX}MAIL_SENDER: expected thread or external")
        if self.backchannel_logout_sender not in ("thread", "external"):
            raise ConfigError(f"{PREFIX}BACKCHANNEL_LOGOUT_SENDER: expected thread or external")
        self._check_subjects()

    def _check_subjects(self) -> None:
        if self.default_subject_type not in ("public", "pairwise"):
            raise ConfigError(f"{PREFIX}DEFAULT_SUBJECT_TYPE: expected public or pairwise")
        if self.pairwise_secret and len(self.pairwise_secret) < 32:
            raise ConfigError(f"{PREFIX}PAIRWISE_SECRET: must be at least 32 characters")
        pairwise_by_default = self.default_subject_type == "pairwise"
        if self.is_production and pairwise_by_default and not self.pairwise_secret:
            raise ConfigError(
                f"{PREFIX}PAIRWISE_SECRET: required when {PREFIX}DEFAULT_SUBJECT_TYPE=pairwise"
            )

    def _check_pages(self) -> None:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.accent_color):
            raise ConfigError(f"{PREFIX}ACCENT_COLOR: expected a colour like #3b5bdb")
        if not self.logo_url.startswith("/") or self.logo_url.startswith("//"):
            # The pages' CSP (default-src 'self') only loads images from this server.
            raise ConfigError(
                f"{PREFIX}LOGO_URL: expected a path on this server, like /static/logo.svg"
            )

    def _with_derived_defaults(self) -> Config:
        instance = Path(self.instance_path or Path.cwd() / "instance").resolve()
        secret_key = self.secret_key
        if not secret_key:
            if self.is_production:
                raise ConfigError(f"{PREFIX}SECRET_KEY: required when {PREFIX}ENV=production")
            secret_key = _development_secret(instance)
        elif self.is_production and len(secret_key) < 32:
            raise ConfigError(f"{PREFIX}SECRET_KEY: must be at least 32 characters")
        database_url = self.database_url or f"sqlite:///{instance / 'authserver.db'}"
        pairwise_secret = self.pairwise_secret
        if not pairwise_secret and not self.is_production:
            pairwise_secret = _development_secret(instance, "pairwise_secret")
        allow_private = self.fetch_allow_private_addresses
        if allow_private is None:
            allow_private = not self.is_production
        return replace(
            self,
            instance_path=str(instance),
            secret_key=secret_key,
            database_url=database_url,
            pairwise_secret=pairwise_secret,
            fetch_allow_private_addresses=allow_private,
        )


# Durations, counts and retention periods: each must be greater than zero.
POSITIVE_SETTINGS = (
    "access_token_ttl",
    "id_token_ttl",
    "refresh_token_ttl",
    "authorization_code_ttl",
    "session_ttl",
    "cache_ttl",
    "key_prepublish_seconds",
    "password_reset_ttl",
    "email_verification_ttl",
    "device_code_ttl",
    "device_poll_interval",
    "admin_reauth_after",
    "lockout_threshold",
    "lockout_duration",
    "audit_retention_days",
    "mail_retention_days",
    "backchannel_logout_timeout",
)
# Rate limits in the `limits` library's notation.
LIMIT_SETTINGS = (
    "ratelimit_pages",
    "ratelimit_api",
    "mail_limit_recipient",
    "mail_limit_account",
    "mail_limit_ip",
)


def _check_limits(name: str, value: str) -> None:
    """The `limits` library's notation, e.g. "20/minute;300/hour"."""
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(
            f"{PREFIX}{name.upper()}: expected limits like 20/minute;300/hour, got {value!r}"
        ) from None


def _parse(name: str, type_: Any, raw: str) -> Any:
    type_name = type_ if isinstance(type_, str) else getattr(type_, "__name__", str(type_))
    if name == "PROXY_FIX":
        return _whole_number(name, raw, minimum=0)
    if type_name == "int":
        return _whole_number(name, raw)
    if type_name in ("bool", "bool | None"):
        return _bool(name, raw)
    if type_name.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw.strip()


def _development_secret(instance: Path, name: str = "secret_key") -> str:
    """Generate a development secret once and keep it in the instance folder."""
    path = instance / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    instance.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
