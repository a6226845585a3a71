"""Walk the hosted pages in a real browser and check every page on the way.

A `Tour` wraps one Playwright page. Each navigation it makes (or that a test
declares with `check()`) ends with the same checks, so no page a browser test
visits escapes them:

- a full-page screenshot in screenshots/<test>/<nn>-<slug>.png, for review by eye
  (`make screenshots`, which sets AUTHSERVER_SCREENSHOTS=1; other runs keep only the
  screenshot of a failure, as a full-page PNG per page is most of a journey's time);
- the response headers of every HTML document the server sent on the way (redirects
  included): nosniff, X-Frame-Options DENY, CSP with frame-ancestors 'none' and
  default-src 'self', Referrer-Policy no-referrer;
- the flags of every cookie the server set: HttpOnly, SameSite=Lax, Path=/, and Secure
  exactly when the issuer is https;
- a CSRF token in every POST form;
- axe-core once per distinct page structure: any violation of a WCAG 2.0/2.1 A or AA
  rule fails the test; those and axe's best-practice findings are written next to
  the screenshots (accessibility.txt).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, Response

    from tests.browser.accessibility import Accessibility
    from tests.browser.servers import LiveServer

KEEP_SCREENSHOTS = os.environ.get("AUTHSERVER_SCREENSHOTS") == "1"

# Cookies the server sets: the sign-in session and Flask's flow cookie (CSRF, consent).
SERVER_COOKIES = ("authserver_session", "authserver_flow")
# Playwright waits at most this long for anything (milliseconds).
TIMEOUT_MS = 10_000
FORMS_SCRIPT = """() => Array.from(document.querySelectorAll('form')).map(form => ({
  method: (form.getAttribute('method') || 'get').toLowerCase(),
  action: form.getAttribute('action') || '',
  sameOrigin: new URL(form.action, location.href).origin === location.origin,
  token: (form.querySelector('input[name="csrf_token"]') || {}).value || ''
}))"""
FOCUS_SCRIPT = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(), name: el.getAttribute('name') || '',
    id: el.id || '', text: (el.innerText || el.value || '').trim().slice(0, 40),
    outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth,
    boxShadow: style.boxShadow
  };
}"""


@dataclass
class Tour:
    """One test's walk through the pages of the server at `server_url`."""

    page: Page
    server_url: str
    folder: Path
    accessibility: Accessibility
    seen: int = 0
    pending_responses: list[Response] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("response", self._record_response)
        self.page.on("framenavigated", self._record_navigation)

    # --- moving around ---------------------------------------------------------------

    def goto(self, url: str, label: str | None = None) -> Response | None:
        """Open `url` (absolute, or a path on the server) and check the page."""
        if url.startswith("/"):
            url = self.server_url + url
        response = self.page.goto(url)
        self.check(label)
        return response

    def click(self, target: str | Locator, label: str | None = None) -> None:
        """Click something that loads a new page (link or submit button), then check it."""
        locator = self.page.locator(target) if isinstance(target, str) else target
        with self.page.expect_navigation():
            locator.click()
        self.check(label)

    def press(self, key: str, label: str | None = None) -> None:
        """Press a key that loads a new page (Enter on a form), then check it."""
        with self.page.expect_navigation():
            self.page.keyboard.press(key)
        self.check(label)

    def submit(self, button_name: str, label: str | None = None) -> None:
        """Click the button with this accessible name."""
        self.click(self.page.get_by_role("button", name=button_name, exact=True), label)

    # --- the checks ------------------------------------------------------------------

    def check(self, label: str | None = None) -> None:
        """Screenshot the current page and run every check on it."""
        self.page.wait_for_load_state("load")
        self.seen += 1
        slug = _slug(label or urlsplit(self.page.url).path)
        self.folder.mkdir(parents=True, exist_ok=True)
        if KEEP_SCREENSHOTS:
            path = self.folder / f"{self.seen:02d}-{slug}.png"
            self.page.screenshot(path=str(path), full_page=True)
        responses, self.pending_responses = self.pending_responses, []
        self.unchecked.clear()
        for response in responses:
            if self.is_ours(response.url):
                check_headers(response, secure=self.secure)
                check_set_cookies(response, secure=self.secure)
        if not self.is_ours(self.page.url):
            return  # the relying party's pages are not ours to judge
        # The headers above included this very page.
        assert any(r.url == self.page.url for r in responses), f"no response for {self.page.url}"
        check_cookie_jar(self.page, self.server_url, secure=self.secure)
        check_forms(self.page)
        self.run_axe(slug)

    def run_axe(self, slug: str, force: bool = False) -> None:
        """axe-core on the current page (see tests/browser/accessibility.py)."""
        where = f"{self.folder.name}/{self.seen:02d}-{slug}"
        self.accessibility.check(self.page, where, self.folder / "accessibility.txt", force)

    def focused(self) -> dict[str, str] | None:
        """The focused element and its computed focus styles."""
        result: dict[str, str] | None = self.page.evaluate(FOCUS_SCRIPT)
        return result

    def assert_all_checked(self) -> None:
        """Every page the browser landed on went through `check()`."""
        assert not self.unchecked, f"pages visited without a check: {self.unchecked}"

    # --- bookkeeping -----------------------------------------------------------------

    @property
    def secure(self) -> bool:
        return self.server_url.startswith("https://")

    def is_ours(self, url: str) -> bool:
        return url == self.server_url or url.startswith(self.server_url + "/")

    def _record_response(self, response: Response) -> None:
        request = response.request
        if request.resource_type == "document" and request.frame == self.page.main_frame:
            self.pending_responses.append(response)

    def _record_navigation(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.unchecked.append(frame.url)


def check_headers(response: Response, *, secure: bool = False) -> None:
    """Clickjacking, sniffing, referrer and CSP headers on an HTML document; HSTS on https."""
    headers = response.all_headers()
    where = f"{response.status} {response.url}"

    def expect(name: str, value: str | None, wanted: str) -> None:
        assert value == wanted, f"{where}: {name} is {value!r}, expected {wanted!r}"

    expect("X-Content-Type-Options", headers.get("x-content-type-options"), "nosniff")
    if secure:
        hsts = headers.get("strict-transport-security", "")
        assert hsts.startswith("max-age="), f"{where}: Strict-Transport-Security is {hsts!r}"
    if not headers.get("content-type", "").startswith("text/html"):
        return
    expect("X-Frame-Options", headers.get("x-frame-options"), "DENY")
    csp = _csp(headers.get("content-security-policy", ""))
    expect("CSP frame-ancestors", csp.get("frame-ancestors"), "'none'")
    expect("CSP default-src", csp.get("default-src"), "'self'")
    expect("Referrer-Policy", headers.get("referrer-policy"), "no-referrer")


def check_set_cookies(response: Response, *, secure: bool) -> None:
    """Every server cookie in a Set-Cookie header: HttpOnly, SameSite=Lax, Path=/, Secure."""
    for raw in response.header_values("set-cookie"):
        for line in raw.split("\n"):
            parsed = SimpleCookie()
            parsed.load(line)
            for name, morsel in parsed.items():
                if name not in SERVER_COOKIES:
                    continue
                where = f"{name} from {response.url}: {line}"
                assert morsel["httponly"], where
                assert morsel["samesite"].lower() == "lax", where
                assert morsel["path"] == "/", where
                assert bool(morsel["secure"]) is secure, where


def check_cookie_jar(page: Page, server_url: str, *, secure: bool) -> None:
    """The cookies the browser actually keeps for the server have the same flags."""
    for cookie in page.context.cookies(server_url):
        if cookie["name"] not in SERVER_COOKIES:
            continue
        assert cookie["httpOnly"], cookie
        assert cookie["sameSite"] == "Lax", cookie
        assert cookie["secure"] is secure, cookie


def check_forms(page: Page) -> None:
    """Every POST form to the page's own site carries a non-empty CSRF token, and none to
    another site (a form_post response to a client) does."""
    for form in page.evaluate(FORMS_SCRIPT):
        if form["method"] != "post":
            continue
        if form["sameOrigin"]:
            assert form["token"], f"POST form without a CSRF token on {page.url}: {form}"
        else:  # form_post to a client: our token must not travel to another site
            assert not form["token"], f"CSRF token posted to another site from {page.url}: {form}"


def has_visible_focus(style: dict[str, str] | None) -> bool:
    """A focus indicator is drawn: an outline or a box shadow."""
    if style is None:
        return False
    outline = style["outlineStyle"] != "none" and style["outlineWidth"] not in ("0px", "")
    return outline or style["boxShadow"] != "none"


def _csp(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = " ".join(words[1:])
    return directives


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:60] or "home"


@dataclass
class Tours:
    """Makes browser contexts (separate "people" or devices) for one test."""

    browser: Browser
    accessibility: Accessibility
    live: LiveServer
    folder: Path
    made: list[tuple[BrowserContext, Tour]] = field(default_factory=list)

    def new(self, name: str = "", **context_options: Any) -> Tour:
        """A new browser context; screenshots of a named one go into a sub-folder."""
        context_options.setdefault("ignore_https_errors", self.live.url.startswith("https:"))
        context = self.browser.new_context(**context_options)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        folder = self.folder / name if name else self.folder
        tour = Tour(page, self.live.url, folder, self.accessibility)
        self.made.append((context, tour))
        return tour
