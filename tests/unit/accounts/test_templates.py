"""The hosted page templates: consent and error pages, and the CSP-safe markup rule."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask, render_template

from tests.factories import make_user

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"


def render_consent(app: Flask, **context: object) -> str:
    values: dict[str, object] = {
        "client_name": "Photo <Printer>",
        "scopes": [("openid", "Sign you in"), ("api:read", "api:read")],
        "user": make_user(),
        "hidden_fields": [("client_id", "abc"), ("state", '"><script>x</script>')],
    }
    values.update(context)
    with app.test_request_context("/authorize"):
        return render_template("oauth/consent.html", **values)


def test_consent_names_the_client_and_each_scope(app: Flask) -> None:
    page = render_consent(app)

    assert "Photo &lt;Printer&gt;" in page
    assert "Sign you in" in page
    assert "<code>api:read</code>" in page
    assert "alice@example.com" in page


def test_consent_posts_allow_or_deny_with_the_request_and_a_csrf_token(app: Flask) -> None:
    page = render_consent(app)

    assert '<form method="post" action="/authorize/decision"' in page
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]+">', page)
    assert '<input type="hidden" name="client_id" value="abc">' in page
    assert 'name="state" value="&#34;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    assert '<button type="submit" name="decision" value="allow"' in page
    assert '<button type="submit" name="decision" value="deny"' in page
    assert ">Allow</button>" in page
    assert ">Deny</button>" in page


def test_the_error_page_shows_title_message_status_and_a_way_home(app: Flask) -> None:
    with app.test_request_context("/"):
        page = render_template(
            "errors/error.html", title="Unknown client", message="Check the link.", status=400
        )

    assert "<title>Unknown client · authserver</title>" in page
    assert "Check the link." in page
    assert "Error 400" in page
    assert 'href="/"' in page


# E-mails are not pages: mail clients need inline styles and no CSP applies to them.
MAIL_TEMPLATES = TEMPLATES / "mail"
# OAuth 2.0 Form Post Response Mode: the page that posts the response (oauth/response_modes.py).
FORM_POST_TEMPLATE = TEMPLATES / "oauth" / "form_post.html"
PAGE_TEMPLATES = sorted(t for t in TEMPLATES.rglob("*.html") if MAIL_TEMPLATES not in t.parents)


@pytest.mark.parametrize("template", PAGE_TEMPLATES, ids=str)
def test_templates_have_no_inline_script_or_style(template: Path) -> None:
    # The CSP (default-src 'self') blocks inline code; markup must not rely on it. A script
    # file of our own (`<script src=...>`, the front-channel logout page's) is allowed.
    markup = template.read_text()

    if template == FORM_POST_TEMPLATE:
        # Its one script is the auto-submit, allowed by its hash in that page's own CSP.
        assert markup.count("<script") == 1 and "<script>{{ script }}</script>" in markup
    else:
        assert not re.search(r"<script(?![^>]*\ssrc=)", markup)
    assert "<style" not in markup
    assert "style=" not in markup
    assert not re.search(r"\son[a-z]+=", markup)
    assert "http://" not in markup and "https://" not in markup


@pytest.mark.parametrize("template", sorted(MAIL_TEMPLATES.rglob("*.html")), ids=str)
def test_mail_templates_have_no_script(template: Path) -> None:
    markup = template.read_text()

    assert "<script" not in markup
    assert not re.search(r"\son[a-z]+=", markup)


@pytest.mark.parametrize(
    "template",
    [t for t in PAGE_TEMPLATES if t.name != "base.html" and not t.name.startswith("_")],
    ids=str,
)
def test_every_page_template_builds_on_the_shared_layout(template: Path) -> None:
    # base.html carries the branding, landmarks, skip link and stylesheets ("_x.html": partials).
    chain = []
    while template != TEMPLATES / "base.html" and len(chain) < 5:
        match = re.search(r'{%\s*extends\s+"([^"]+)"\s*%}', template.read_text())
        assert match, f"{template} does not extend a layout"
        chain.append(match.group(1))
        template = TEMPLATES / match.group(1)
    assert chain[-1] == "base.html"
