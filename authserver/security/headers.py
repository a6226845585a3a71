"""Response headers every page gets (OWASP Secure Headers Project)."""

from __future__ import annotations

from flask import Response, current_app

# No inline script or style anywhere; nothing may frame us (clickjacking). No
# form-action: it would block the redirect to a client after the consent POST.
CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
# RFC 6797: two years; only sent when the issuer is https.
STRICT_TRANSPORT_SECURITY = "max-age=63072000"


def add_security_headers(response: Response) -> Response:
    """after_request: nosniff everywhere; framing, CSP, referrer and caching rules on HTML."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if current_app.config["AUTHSERVER"].secure_cookies:
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if response.mimetype == "text/html":
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        # Pages show who is signed in and carry CSRF tokens: never store them.
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
    return response
