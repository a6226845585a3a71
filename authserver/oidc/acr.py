"""Requested Authentication Context Class References: which sign-in a request needs.

Our `acr` values are ordered levels (accounts/totp.py): "1" the password alone, "2"
the password and a second factor. A request asks for a level in two ways:

- `acr_values` (OpenID Connect Core section 3.1.2.1), read as the lowest acceptable
  level, as RFC 9470 step-up expects of a resource server asking for `acr_values=2`;
- an `acr` member of the `claims` parameter's `id_token` object (section 5.5.1.1),
  with `value` or `values`: the lowest known value is the level needed. An
  essential `acr` that no authentication here can meet is a failed authentication
  (section 5.5.1.1): `unmet_authentication_requirements`.

Unknown values are ignored, so a request naming only another provider's classes is
served as if it named none (voluntary, section 5.5.1). The id_token always carries
the session's real `acr`.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error

from ..accounts.totp import ACR_VALUES_SUPPORTED

# Levels in increasing assurance; the position is the level.
ACR_LEVELS = {value: level for level, value in enumerate(ACR_VALUES_SUPPORTED, start=1)}


class UnmetAuthenticationRequirementsError(OAuth2Error):
    """OpenID Connect Core 1.0 errata set 2, section 3.1.2.6 (Error Code registry):
    the OP was unable to authenticate the End-User as the request requires."""

    error = "unmet_authentication_requirements"


class UnmeetableAcr(ValueError):
    """An essential `acr` whose values no authentication here provides."""


def required_acr(acr_values: str | None, claims_request: dict[str, Any] | None) -> str | None:
    """The lowest `acr` that satisfies the request, or None when any sign-in does.

    Raises UnmeetableAcr for an essential `acr` claim whose values are all unknown.
    """
    levels = (_from_acr_values(acr_values), _from_claims(claims_request))
    needed = max((level for level in levels if level is not None), default=None)
    if needed is None:
        return None
    return next(value for value, level in ACR_LEVELS.items() if level == needed)


def satisfies(acr: str | None, required: str) -> bool:
    """True when a session authenticated at `acr` meets the `required` level."""
    return ACR_LEVELS.get(acr or "", 0) >= ACR_LEVELS[required]


def _from_acr_values(acr_values: str | None) -> int | None:
    """Section 3.1.2.1: space-separated values; the lowest known one is the minimum."""
    known = [ACR_LEVELS[value] for value in (acr_values or "").split() if value in ACR_LEVELS]
    return min(known, default=None)


def _from_claims(claims_request: dict[str, Any] | None) -> int | None:
    """Section 5.5.1.1: `{"id_token": {"acr": {"essential": true, "values": [...]}}}`."""
    spec = ((claims_request or {}).get("id_token") or {}).get("acr")
    if not isinstance(spec, dict):
        return None
    asked: list[Any] = []
    if "value" in spec:
        asked.append(spec["value"])
    if isinstance(spec.get("values"), list):
        asked.extend(spec["values"])
    known = [ACR_LEVELS[value] for value in asked if isinstance(value, str) and value in ACR_LEVELS]
    if known:
        return min(known)
    if spec.get("essential") is True and asked:
        raise UnmeetableAcr("no requested acr value can be met")
    return None
