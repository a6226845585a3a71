"""RFC 7636 (PKCE) as RFC 9700 section 2.1.1 wants it: S256 only, required of every client."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge

from ...core import capabilities
from ...core.secrets import same_secret


def compare_s256(code_verifier: str, code_challenge: str) -> bool:
    """RFC 7636 section 4.6: BASE64URL(SHA256(verifier)) == challenge, in constant time."""
    expected = create_s256_code_challenge(code_verifier)
    return same_secret(expected, code_challenge)


class RequiredS256CodeChallenge(CodeChallenge):
    """Authlib's CodeChallenge defaults to `plain` and binds only public clients; we refuse both."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = list(capabilities.CODE_CHALLENGE_METHODS)
    CODE_CHALLENGE_METHODS = {"S256": compare_s256}

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """RFC 7636 section 4.4.1: a missing challenge or a method other than S256 is refused."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        """RFC 7636 section 4.6: every code has a challenge, so each redemption needs a verifier."""
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)
