"""A relying-party web app that signs people in with authorization code + PKCE (Authlib).

    authserver clients create --name "Example web app" \\
        --redirect-uri http://127.0.0.1:8080/callback \\
        --post-logout-redirect-uri http://127.0.0.1:8080/signed-out \\
        --scope "openid profile email"
    AUTHSERVER_ISSUER=http://127.0.0.1:5000 WEBAPP_CLIENT_ID=... WEBAPP_CLIENT_SECRET=... \\
        .venv/bin/python examples/webapp.py

Authlib's Flask client does the protocol: state, nonce and a PKCE S256 verifier
kept in the (signed) session cookie during the redirect; the code exchange with
client_secret_basic; and the id_token checked against the issuer's JWKS (signature,
iss, aud, exp, nonce and at_hash). The claims shown come from the userinfo endpoint.
Logout goes to the end_session_endpoint with id_token_hint and post_logout_redirect_uri.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template_string, session, url_for
from werkzeug.wrappers import Response as BaseResponse

SCOPE = "openid profile email"

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example web app</title></head>
<body>
<main>
{% if claims %}
  <h1>Signed in as {{ claims.get("name") or claims["sub"] }}</h1>
  <table>
    {% for name, value in claims|dictsort %}
    <tr><th scope="row">{{ name }}</th><td class="claim-{{ name }}">{{ value }}</td></tr>
    {% endfor %}
  </table>
  <p><a href="{{ url_for('logout') }}">Sign out</a></p>
{% else %}
  <h1>Example web app</h1>
  {% if message %}<p role="status">{{ message }}</p>{% endif %}
  <p><a href="{{ url_for('login') }}">Sign in</a></p>
{% endif %}
</main>
</body>
</html>
"""


def create_webapp(
    issuer: str, client_id: str, client_secret: str, secret_key: str | None = None
) -> Flask:
    """The example relying party, configured for one issuer and one registered client."""
    app = Flask(__name__)
    app.secret_key = secret_key or secrets.token_hex(32)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(app)
    provider: Any = oauth.register(
        "authserver",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPE,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )

    @app.get("/")
    def home() -> str:
        """The person's claims from userinfo, or a sign-in link."""
        return render_template_string(PAGE, claims=session.get("claims"), message=None)

    @app.get("/login")
    def login() -> BaseResponse:
        """OpenID Connect Core section 3.1.2.1, with state, nonce and PKCE (RFC 7636)."""
        return provider.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback() -> BaseResponse | tuple[str, int]:
        """Section 3.1.2.5: exchange the code, validate the id_token, then ask userinfo."""
        try:
            token = provider.authorize_access_token()
            claims = dict(provider.userinfo(token=token))
        except OAuthError as error:
            page = render_template_string(PAGE, claims=None, message=f"Sign-in failed: {error}")
            return page, 400
        # Core section 5.3.2: the userinfo sub must be the id_token's sub.
        if claims.get("sub") != token["userinfo"]["sub"]:
            return render_template_string(PAGE, claims=None, message="Mismatched sub."), 400
        session.clear()
        session["claims"] = claims
        session["id_token"] = token["id_token"]
        return redirect(url_for("home"))

    @app.get("/logout")
    def logout() -> BaseResponse:
        """RP-Initiated Logout 1.0 section 2: to the end_session_endpoint with id_token_hint."""
        id_token = session.pop("id_token", None)
        session.pop("claims", None)
        return provider.logout_redirect(
            post_logout_redirect_uri=url_for("signed_out", _external=True),
            id_token_hint=id_token,
        )

    @app.get("/signed-out")
    def signed_out() -> str | tuple[str, int]:
        """Section 3: back from the issuer; the state must be the one we sent."""
        try:
            provider.validate_logout_response()
        except OAuthError:
            return render_template_string(PAGE, claims=None, message="Unexpected logout."), 400
        return render_template_string(PAGE, claims=None, message="You are signed out.")

    return app


if __name__ == "__main__":
    create_webapp(
        os.environ.get("AUTHSERVER_ISSUER", "http://127.0.0.1:5000"),
        os.environ["WEBAPP_CLIENT_ID"],
        os.environ["WEBAPP_CLIENT_SECRET"],
        os.environ.get("WEBAPP_SECRET_KEY"),
    ).run(port=8080)
