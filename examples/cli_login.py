"""A command-line client that signs in with the device authorization grant (RFC 8628).

    python examples/cli_login.py --issuer http://127.0.0.1:5000 --client-id CLIENT login
    python examples/cli_login.py --issuer http://127.0.0.1:5000 --client-id CLIENT whoami
    python examples/cli_login.py --issuer http://127.0.0.1:5000 --client-id CLIENT logout

The client is a public client registered with the device grant and refresh_token:

    authserver clients create --name "My CLI" --auth-method none \\
        --grant-type urn:ietf:params:oauth:grant-type:device_code --grant-type refresh_token \\
        --scope "openid profile email offline_access"

Tokens are kept in $XDG_CONFIG_HOME/authserver-cli/tokens.json (~/.config when unset),
readable by the user only (mode 0600). Needs only the standard library and requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any

import requests

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPE = "openid profile email offline_access"
# Refresh a little before the access token expires, so it does not expire in flight.
EXPIRY_MARGIN = 30
TIMEOUT = 10


class CliError(Exception):
    """Something the user should read; the command exits with status 1."""


def default_config_dir() -> Path:
    """XDG Base Directory: $XDG_CONFIG_HOME, else ~/.config; our own folder inside."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "authserver-cli"


class TokenStore:
    """The tokens of one sign-in, in a JSON file only the user can read."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "tokens.json"

    def load(self) -> dict[str, Any] | None:
        """The stored tokens, or None when signed out."""
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data

    def save(self, tokens: dict[str, Any]) -> None:
        """Write atomically; the file is created with mode 0600, never readable by others."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(tokens, handle, indent=2)
        os.chmod(temporary, 0o600)  # in case an older file had looser bits
        os.replace(temporary, self.path)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


class Issuer:
    """The authorization server, found through its discovery document."""

    def __init__(self, issuer: str, client_id: str, http: requests.Session | None = None) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.http = http or requests.Session()
        self._metadata: dict[str, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """OpenID Connect Discovery 1.0 section 4; the issuer must match exactly (section 4.3)."""
        if self._metadata is None:
            url = self.issuer + "/.well-known/openid-configuration"
            response = self.http.get(url, timeout=TIMEOUT)
            response.raise_for_status()
            metadata: dict[str, Any] = response.json()
            if metadata.get("issuer") != self.issuer:
                raise CliError(f"{url} names another issuer: {metadata.get('issuer')!r}")
            self._metadata = metadata
        return self._metadata

    def endpoint(self, name: str) -> str:
        try:
            return str(self.metadata[name])
        except KeyError:
            raise CliError(f"the issuer does not advertise {name}") from None

    def start_device_authorization(self, scope: str) -> dict[str, Any]:
        """RFC 8628 section 3.1: the device authorization request."""
        response = self.http.post(
            self.endpoint("device_authorization_endpoint"),
            data={"client_id": self.client_id, "scope": scope},
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise CliError(f"device authorization refused: {_describe(response)}")
        body: dict[str, Any] = response.json()
        return body

    def poll(self, device: dict[str, Any], sleep: Any = time.sleep) -> dict[str, Any]:
        """RFC 8628 sections 3.4 and 3.5: poll every `interval` seconds, slower on slow_down."""
        interval = int(device.get("interval", 5))
        deadline = time.monotonic() + int(device.get("expires_in", 600))
        while time.monotonic() < deadline:
            sleep(interval)
            response = self.http.post(
                self.endpoint("token_endpoint"),
                data={
                    "grant_type": DEVICE_CODE_GRANT,
                    "device_code": device["device_code"],
                    "client_id": self.client_id,
                },
                timeout=TIMEOUT,
            )
            body: dict[str, Any] = response.json()
            if response.status_code == 200:
                return body
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5  # section 3.5: add 5 seconds to this and all later polls
                continue
            if error == "access_denied":
                raise CliError("the sign-in was denied")
            if error == "expired_token":
                raise CliError("the code expired before it was approved; try again")
            raise CliError(f"sign-in failed: {_describe(response)}")
        raise CliError("the code expired before it was approved; try again")

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """RFC 6749 section 6; the server rotates the refresh token, so keep the new one."""
        response = self.http.post(
            self.endpoint("token_endpoint"),
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": self.client_id,
            },
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise CliError(f"the session ended ({_describe(response)}); run `login` again")
        body: dict[str, Any] = response.json()
        return body

    def userinfo(self, access_token: str) -> requests.Response:
        """OpenID Connect Core section 5.3: the claims about the signed-in person."""
        return self.http.get(
            self.endpoint("userinfo_endpoint"),
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
        )

    def revoke(self, token: str, hint: str) -> None:
        """RFC 7009 section 2.1: revoke a token; the server answers 200 even for unknown ones."""
        response = self.http.post(
            self.endpoint("revocation_endpoint"),
            data={"token": token, "token_type_hint": hint, "client_id": self.client_id},
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise CliError(f"revocation failed: {_describe(response)}")


def _describe(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{body.get('error', response.status_code)}: {body.get('error_description', '')}"


def _stored(tokens: dict[str, Any], issuer: Issuer) -> dict[str, Any]:
    """What we keep of a token response: the tokens and when the access token expires."""
    return {
        "issuer": issuer.issuer,
        "client_id": issuer.client_id,
        "access_token": tokens["access_token"],
        "expires_at": int(time.time()) + int(tokens.get("expires_in", 0)),
        "refresh_token": tokens.get("refresh_token"),
        "id_token": tokens.get("id_token"),
        "scope": tokens.get("scope", ""),
    }


def login(issuer: Issuer, store: TokenStore, scope: str, open_browser: bool) -> int:
    """Start the device flow, show the code, open the browser, poll, and store the tokens."""
    device = issuer.start_device_authorization(scope)
    uri = device["verification_uri"]
    complete = device.get("verification_uri_complete")
    print(f"To sign in, open {uri} and enter the code: {device['user_code']}", flush=True)
    if complete:
        print(f"Or open: {complete}", flush=True)
    if open_browser:
        webbrowser.open(complete or uri)
    tokens = issuer.poll(device)
    store.save(_stored(tokens, issuer))
    print("Signed in.", flush=True)
    return 0


def fresh_tokens(issuer: Issuer, store: TokenStore, *, force: bool = False) -> dict[str, Any]:
    """The stored tokens, refreshed first when the access token has (almost) expired."""
    tokens = store.load()
    if tokens is None:
        raise CliError("not signed in; run `login` first")
    if force or tokens["expires_at"] - EXPIRY_MARGIN <= time.time():
        if not tokens.get("refresh_token"):
            raise CliError("the access token expired; run `login` again")
        refreshed = issuer.refresh(tokens["refresh_token"])
        # Rotation: the old refresh token is spent; keep the new one (or the old if none came).
        refreshed.setdefault("refresh_token", tokens["refresh_token"])
        refreshed.setdefault("id_token", tokens.get("id_token"))
        tokens = _stored(refreshed, issuer)
        store.save(tokens)
    return tokens


def whoami(issuer: Issuer, store: TokenStore) -> int:
    """Print the userinfo claims, refreshing the access token when needed (once on a 401)."""
    tokens = fresh_tokens(issuer, store)
    response = issuer.userinfo(tokens["access_token"])
    if response.status_code == 401:
        tokens = fresh_tokens(issuer, store, force=True)
        response = issuer.userinfo(tokens["access_token"])
    if response.status_code != 200:
        raise CliError(f"userinfo refused: {_describe(response)}")
    print(json.dumps(response.json(), indent=2, sort_keys=True), flush=True)
    return 0


def logout(issuer: Issuer, store: TokenStore) -> int:
    """Revoke the refresh token (and with it the grant) and forget every stored token."""
    tokens = store.load()
    if tokens is None:
        print("Not signed in.", flush=True)
        return 0
    if tokens.get("refresh_token"):
        issuer.revoke(tokens["refresh_token"], "refresh_token")
    else:
        issuer.revoke(tokens["access_token"], "access_token")
    store.delete()
    print("Signed out.", flush=True)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cli_login", description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default=os.environ.get("AUTHSERVER_ISSUER"))
    parser.add_argument("--client-id", default=os.environ.get("AUTHSERVER_CLIENT_ID"))
    parser.add_argument("--scope", default=DEFAULT_SCOPE)
    parser.add_argument("--config-dir", type=Path, default=None, help="where tokens.json lives")
    commands = parser.add_subparsers(dest="command", required=True)
    login_parser = commands.add_parser("login", help="sign in with the device flow")
    login_parser.add_argument("--no-browser", action="store_true", help="only print the link")
    commands.add_parser("whoami", help="show who is signed in (userinfo)")
    commands.add_parser("logout", help="revoke the tokens and forget them")
    args = parser.parse_args(argv)
    if not args.issuer or not args.client_id:
        parser.error("--issuer and --client-id are required (or AUTHSERVER_ISSUER/_CLIENT_ID)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit status 0 on success, 1 with a message otherwise."""
    args = parse_args(argv)
    issuer = Issuer(args.issuer, args.client_id)
    store = TokenStore(args.config_dir or default_config_dir())
    try:
        if args.command == "login":
            return login(issuer, store, args.scope, open_browser=not args.no_browser)
        if args.command == "whoami":
            return whoami(issuer, store)
        return logout(issuer, store)
    except (CliError, requests.RequestException) as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
