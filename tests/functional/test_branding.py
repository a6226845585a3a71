"""Branding and the shared look: name, logo and accent colour; error pages with a way back."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from authserver import create_app
from authserver.branding import (
    DARK_BACKGROUNDS,
    LIGHT_BACKGROUNDS,
    MIN_CONTRAST,
    contrast_ratio,
    palette,
)
from authserver.config import ConfigError
from tests.factories import make_user
from tests.oauth_helpers import sign_in

hex_colors = st.from_regex(r"#[0-9a-f]{6}", fullmatch=True)


def css_variables(css: str) -> dict[str, str]:
    """The custom properties of the first :root block."""
    block = css.split("}", 1)[0]
    return dict(re.findall(r"(--[a-z-]+):\s*([^;]+);", block))


# --- /branding.css ------------------------------------------------------------------


def test_the_stylesheet_carries_the_configured_accent(app_factory: Any) -> None:
    browser = app_factory(accent_color="#AA0000").test_client()

    response = browser.get("/branding.css")

    assert response.status_code == 200
    assert response.mimetype == "text/css"
    variables = css_variables(response.text)
    assert variables["--accent"] == "#aa0000"
    assert variables["--accent-text"] == "#ffffff"
    assert "@media (prefers-color-scheme: dark)" in response.text


def test_the_stylesheet_is_cacheable_and_revalidates(client: FlaskClient) -> None:
    response = client.get("/branding.css")
    etag = response.headers["ETag"]

    assert "public" in response.headers["Cache-Control"]
    assert re.search(r"max-age=\d+", response.headers["Cache-Control"])
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    again = client.get("/branding.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""


def test_a_new_colour_gets_a_new_stylesheet_url(app_factory: Any) -> None:
    red = app_factory(accent_color="#aa0000").test_client().get("/login").text
    green = app_factory(accent_color="#00aa00").test_client().get("/login").text

    red_url = re.search(r'href="(/branding\.css\?v=[0-9a-f]+)"', red)
    green_url = re.search(r'href="(/branding\.css\?v=[0-9a-f]+)"', green)
    assert red_url and green_url
    assert red_url.group(1) != green_url.group(1)


def test_pages_link_the_branding_after_the_main_stylesheet(client: FlaskClient) -> None:
    page = client.get("/login").text

    assert page.index("/static/css/main.css") < page.index("/branding.css?v=")


@pytest.mark.parametrize("accent", ["#ffff00", "#000000", "#ffffff", "#777777", "#3b5bdb"])
def test_button_text_is_readable_on_any_accent(accent: str) -> None:
    colors = palette(accent)

    assert contrast_ratio(colors.accent_text, colors.accent) >= MIN_CONTRAST
    assert contrast_ratio(colors.accent_hover_text, colors.accent_hover) >= MIN_CONTRAST


@given(hex_colors)
def test_every_derived_colour_reaches_4_5_to_1(accent: str) -> None:
    colors = palette(accent)

    assert contrast_ratio(colors.accent_text, colors.accent) >= MIN_CONTRAST
    assert contrast_ratio(colors.accent_hover_text, colors.accent_hover) >= MIN_CONTRAST
    for background in LIGHT_BACKGROUNDS:
        assert contrast_ratio(colors.link_light, background) >= MIN_CONTRAST
    for background in DARK_BACKGROUNDS:
        assert contrast_ratio(colors.link_dark, background) >= MIN_CONTRAST


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio("#3b5bdb", "#3b5bdb") == pytest.approx(1.0)


@pytest.mark.parametrize("accent", ["red", "#abc", "#gggggg", "3b5bdb", "#3b5bdb "])
def test_an_invalid_accent_colour_stops_the_start(
    database_url: str, instance_dir: Any, accent: str
) -> None:
    from tests.conftest import app_overrides

    with pytest.raises(ConfigError, match="ACCENT_COLOR"):
        create_app(app_overrides(database_url, instance_dir, accent_color=accent))


# --- name and logo on every page ----------------------------------------------------------


def test_product_name_and_logo_appear_on_pages(app_factory: Any) -> None:
    app: Flask = app_factory(product_name="Acme ID", logo_url="/static/img/acme.svg")
    browser = app.test_client()

    for path in ("/", "/login", "/logout", "/no-such-page"):
        page = browser.get(path).text
        assert "· Acme ID</title>" in page, path
        assert '<img src="/static/img/acme.svg" alt=""' in page, path
        assert "<span>Acme ID</span>" in page, path
        assert "authserver" not in page.split("<body>", 1)[1], path


def test_the_sign_out_question_names_the_product(app_factory: Any) -> None:
    app: Flask = app_factory(product_name="Acme ID")
    browser = app.test_client()
    with app.app_context():
        make_user()
        sign_in(browser)

    assert "Sign out of Acme ID?" in browser.get("/logout").text


def test_every_page_has_landmarks_a_skip_link_and_a_viewport(client: FlaskClient) -> None:
    for path in ("/", "/login", "/logout", "/no-such-page"):
        page = client.get(path).text
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
        assert '<a class="skip-link" href="#main">' in page
        assert '<main id="main"' in page
        assert "<header" in page and "<footer" in page and "<nav" in page
        assert "style=" not in page and "<style" not in page and "<script" not in page


# --- error pages ------------------------------------------------------------------------

ERRORS = {
    400: "Bad request",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_every_error_page_has_a_title_and_a_way_back(app_factory: Any, status: int) -> None:
    app: Flask = app_factory()

    def fail() -> None:
        if status == 500:
            raise RuntimeError("boom")
        abort(status)

    app.add_url_rule("/fail", "fail", fail)

    response = app.test_client().get("/fail", headers={"Accept": "text/html"})

    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert f"Error {status}" in response.text
    assert f'<h1 id="error-title">{ERRORS[status]}</h1>' in response.text
    assert '<a class="button primary" href="/">Go back home</a>' in response.text
    assert "Traceback" not in response.text and "boom" not in response.text


def test_forbidden_offers_to_sign_in_again(app_factory: Any) -> None:
    app: Flask = app_factory()
    app.add_url_rule("/private", "private", lambda: abort(403))

    page = app.test_client().get("/private").text

    assert 'href="/login?reauth=1">Sign in again</a>' in page


def test_an_expired_form_offers_to_sign_in_again(client: FlaskClient) -> None:
    response = client.post("/login", data={"email": "a@example.com", "password": "x"})

    assert response.status_code == 400
    assert 'href="/login?reauth=1">Sign in again</a>' in response.text
    assert 'href="/">Go back home</a>' in response.text


def test_a_missing_page_does_not_offer_sign_in(client: FlaskClient) -> None:
    page = client.get("/no-such-page").text

    assert "Sign in again" not in page
    assert "The link may be old or mistyped." in page
