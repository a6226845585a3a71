"""Both sides do the same work, checked: the answers wrk sampled during a run, verified.

bench/wrk/flow.lua writes some of each thread's counted answers (the first few, then every
500th) to BENCH_SAMPLES-<thread>.txt; `verify_run()` reads them after the run and raises
`VerificationError`, naming the target, the workload and what was wrong, unless each one
is the work the bench counts:

- client_credentials: 200 and an RFC 9068 access token (header alg the target's, typ
  at+jwt; aud the API, 900 s, the bench client, the target's iss).
- code_exchange: 200, an access, id and refresh token; the id_token RS256 from the iss.
- refresh: 200, a new refresh token (none this thread presented before), the access token
  as above; after the run a refresh token rotated at the start of the run (flow.lua
  records which) is refused with invalid_grant. On both servers that replay revokes its
  grant, on the peer the grant of its own session: each run builds a new pool, and the
  target signs in afresh for it.
- introspection: 200, active, the bench client, the scope read.
- userinfo: 200 with a sub. jwks: the keys of the target's alg and RS256.
- discovery: the target's issuer.

One access token per run is verified against the target's JWKS too (joserfc), so a token
with a garbage signature fails; the others are decoded only. A run that counted
successes but left no samples fails: sampling must not break silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bench.client import HTTP_TIMEOUT, RESOURCE, IssuerError, jwt_part

ACCESS_TOKEN_TYP = "at+jwt"
ACCESS_TOKEN_LIFETIME = 900
ID_TOKEN_ALG = "RS256"
INTROSPECTED_SCOPE = "read"


class Verified(Protocol):
    """What the verifier needs of a target: bench/target.py's Authserver, bench/peer.py's Peer."""

    name: str
    alg: str
    issuer: str
    client_id: str
    jwks_uri: str

    def refresh(self, refresh_token: str) -> dict[str, Any]: ...
    def new_session(self) -> None: ...


class VerificationError(RuntimeError):
    """A run's answers were not the work the bench counts."""


class Wrong(Exception):
    """One sample failed one check; `verify_run()` adds the target and workload."""


@dataclass
class Sample:
    """One record of flow.lua: an answer (status, body) or the first token presented."""

    kind: str
    status: int
    seen: bool
    body: str

    def json(self) -> dict[str, Any]:
        """The body as a JSON object, or Wrong."""
        try:
            value = json.loads(self.body)
        except ValueError:
            raise Wrong(f"answer {self.status} is not JSON: {self.body[:200]!r}") from None
        if not isinstance(value, dict):
            raise Wrong(f"answer {self.status} is not a JSON object: {self.body[:200]!r}")
        return value


# -- reading ----------------------------------------------------------------------------


def read_samples(prefix: Path) -> list[Sample]:
    """Every record of every thread's file PREFIX-<thread>.txt."""
    samples: list[Sample] = []
    for path in sorted(prefix.parent.glob(f"{prefix.name}-*.txt")):
        samples += _parse(path.read_bytes())
    return samples


def _parse(data: bytes) -> list[Sample]:
    """The records of one file: a line "<kind> <status> <seen> <length>", the body, "\\n"."""
    samples = []
    at = 0
    while at < len(data):
        end = data.index(b"\n", at)
        kind, status, seen, length = data[at:end].decode().split(" ")
        body = data[end + 1 : end + 1 + int(length)]
        samples.append(Sample(kind, int(status), seen == "1", body.decode()))
        at = end + 1 + int(length) + 1
    return samples


# -- checks -----------------------------------------------------------------------------


def require(condition: bool, what: str) -> None:
    """Raise Wrong(what) unless `condition` holds."""
    if not condition:
        raise Wrong(what)


def expect_equal(what: str, found: Any, wanted: Any) -> None:
    """Raise Wrong unless `found` is `wanted`, saying both."""
    require(found == wanted, f"{what} is {found!r}, expected {wanted!r}")


def decode(token: Any, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A compact JWT's header and claims, unverified; Wrong if it is not one."""
    require(isinstance(token, str), f"{what} missing")
    try:
        return jwt_part(token, 0), jwt_part(token, 1)
    except (ValueError, IndexError):
        raise Wrong(f"{what} is not a compact JWT: {token[:60]!r}") from None


def token_answer(sample: Sample, *names: str) -> dict[str, Any]:
    """A 200 token endpoint answer that has each of `names`."""
    expect_equal("status", sample.status, 200)
    body = sample.json()
    missing = [name for name in names if name not in body]
    require(not missing, f"token answer lacks {', '.join(missing)}: {sorted(body)}")
    return body


def check_access_token(target: Verified, token: Any) -> None:
    """RFC 9068: the header's alg and typ, then aud, lifetime, client_id and iss."""
    header, claims = decode(token, "access_token")
    expect_equal("access_token header alg", header.get("alg"), target.alg)
    expect_equal("access_token header typ", header.get("typ"), ACCESS_TOKEN_TYP)
    expect_equal("access_token aud", claims.get("aud"), RESOURCE)
    exp, iat = claims.get("exp"), claims.get("iat")
    lifetime = exp - iat if isinstance(exp, int) and isinstance(iat, int) else (exp, iat)
    expect_equal("access_token exp - iat", lifetime, ACCESS_TOKEN_LIFETIME)
    expect_equal("access_token client_id", claims.get("client_id"), target.client_id)
    expect_equal("access_token iss", claims.get("iss"), target.issuer)


def check_client_credentials(target: Verified, sample: Sample) -> None:
    """RFC 6749 section 4.4.3: an access token for the API."""
    check_access_token(target, token_answer(sample, "access_token")["access_token"])


def check_code_exchange(target: Verified, sample: Sample) -> None:
    """RFC 6749 section 4.1.4 and OpenID Connect Core 3.1.3.3: all three tokens."""
    body = token_answer(sample, "access_token", "id_token", "refresh_token")
    header, claims = decode(body["id_token"], "id_token")
    expect_equal("id_token header alg", header.get("alg"), ID_TOKEN_ALG)
    expect_equal("id_token iss", claims.get("iss"), target.issuer)
    check_access_token(target, body["access_token"])


def check_refresh(target: Verified, sample: Sample) -> None:
    """RFC 6749 section 6 with rotation: a refresh token the thread never presented."""
    body = token_answer(sample, "access_token", "refresh_token")
    require(not sample.seen, "the new refresh_token was already presented: not rotated")
    check_access_token(target, body["access_token"])


def check_introspection(target: Verified, sample: Sample) -> None:
    """RFC 7662 section 2.2: active, for the bench client, with its scope.

    authserver introspects its JWT, the peer an opaque token (bench/peer.py): both
    answer the same members for them.
    """
    expect_equal("status", sample.status, 200)
    body = sample.json()
    expect_equal("active", body.get("active"), True)
    expect_equal("client_id", body.get("client_id"), target.client_id)
    scope = body.get("scope")
    require(isinstance(scope, str) and INTROSPECTED_SCOPE in scope.split(), f"scope {scope!r}")


def check_userinfo(_: Verified, sample: Sample) -> None:
    """OpenID Connect Core 5.3.2: the claims, sub always (the token: JWT ours, opaque peer's)."""
    expect_equal("status", sample.status, 200)
    sub = sample.json().get("sub")
    require(isinstance(sub, str) and sub != "", f"userinfo sub {sub!r}")


def check_jwks(target: Verified, sample: Sample) -> None:
    """RFC 7517 section 5: a key for the access tokens' alg and one for id_tokens."""
    expect_equal("status", sample.status, 200)
    keys = sample.json().get("keys")
    if not isinstance(keys, list) or keys == []:
        raise Wrong(f"jwks keys {keys!r}")
    algs = {key.get("alg") for key in keys if isinstance(key, dict)}
    wanted = {target.alg, ID_TOKEN_ALG}
    require(wanted <= algs, f"jwks algs {sorted(map(str, algs))}, expected {sorted(wanted)}")


def check_discovery(target: Verified, sample: Sample) -> None:
    """OpenID Connect Discovery 1.0 section 4.3: the issuer is the target's, exactly."""
    expect_equal("status", sample.status, 200)
    expect_equal("issuer", sample.json().get("issuer"), target.issuer)


CHECKS: dict[str, Callable[[Verified, Sample], None]] = {
    "client_credentials": check_client_credentials,
    "code_exchange": check_code_exchange,
    "refresh": check_refresh,
    "introspection": check_introspection,
    "userinfo": check_userinfo,
    "jwks": check_jwks,
    "discovery": check_discovery,
}


# -- after the run ----------------------------------------------------------------------


def check_signature(target: Verified, answers: list[Sample]) -> None:
    """The first sampled access token's signature verifies with the target's JWKS."""
    token = next((s.json().get("access_token") for s in answers if s.status == 200), None)
    if not isinstance(token, str):
        return  # a workload without access tokens (introspection, userinfo, jwks, ...)
    keys = KeySet.import_key_set(requests.get(target.jwks_uri, timeout=HTTP_TIMEOUT).json())
    try:
        jws.deserialize_compact(token, keys, algorithms=[target.alg])
    except (JoseError, ValueError) as error:
        reason = str(error).rstrip(": ")
        raise Wrong(f"access_token signature does not verify with the JWKS: {reason}") from None


def check_replay(target: Verified, presented: list[Sample]) -> None:
    """RFC 9700 section 4.14.2: a rotated refresh token presented again is refused."""
    require(presented != [], "no refresh token was recorded as presented")
    try:
        target.refresh(presented[0].body)
    except IssuerError as refused:
        require("invalid_grant" in str(refused), f"replay refused, but not so: {refused}")
    else:
        raise Wrong("a rotated refresh token was accepted again after the run")
    finally:
        target.new_session()


def verify_run(target: Verified, workload: str, prefix: Path, ok: int) -> int:
    """Check one run's samples (and, for refresh, a replay); how many answers were checked."""
    samples = read_samples(prefix)
    answers = [s for s in samples if s.kind == "answer"]
    try:
        require(answers != [] or ok == 0, f"{ok} successes but no sample was written")
        for number, sample in enumerate(answers, 1):
            try:
                CHECKS[workload](target, sample)
            except Wrong as wrong:
                raise Wrong(f"sample {number} of {len(answers)}: {wrong}") from None
        check_signature(target, answers)
        if workload == "refresh" and ok > 0:
            check_replay(target, [s for s in samples if s.kind == "presented"])
    except Wrong as wrong:
        raise VerificationError(f"{target.name} {workload}: {wrong}") from None
    return len(answers)
