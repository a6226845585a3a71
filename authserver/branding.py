"""The hosted pages' branding: product name, logo and accent colour from configuration.

The accent colour reaches the pages as a tiny stylesheet, /branding.css, because
the CSP (default-src 'self') forbids inline styles. It also carries the colours
derived from the accent so that text stays readable whatever colour is chosen
(WCAG 2.1 success criterion 1.4.3: a contrast ratio of at least 4.5:1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

bp = Blueprint("branding", __name__)

# The page and card backgrounds of static/css/main.css, light and dark.
LIGHT_BACKGROUNDS = ("#ffffff", "#f5f6f8")
DARK_BACKGROUNDS = ("#181c22", "#0f1216")
# WCAG 2.1 1.4.3 (AA) for normal text.
MIN_CONTRAST = 4.5
# The stylesheet changes only with the configuration; its URL carries a version.
MAX_AGE = 24 * 3600
Rgb = tuple[float, float, float]


def parse_hex(color: str) -> Rgb:
    """ "#rrggbb" as three channels in 0..1."""
    value = color.lstrip("#")
    return (int(value[0:2], 16) / 255, int(value[2:4], 16) / 255, int(value[4:6], 16) / 255)


def to_hex(rgb: Rgb) -> str:
    """Three channels in 0..1 as "#rrggbb"."""
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour."""

    def linear(channel: float) -> float:
        if channel <= 0.04045:
            return channel / 12.92
        return float(((channel + 0.055) / 1.055) ** 2.4)

    r, g, b = (linear(c) for c in parse_hex(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.1 contrast ratio, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def readable_on(background: str) -> str:
    """Black or white, whichever reads better on `background` (always at least 4.58:1)."""
    white, black = contrast_ratio("#ffffff", background), contrast_ratio("#000000", background)
    return "#ffffff" if white >= black else "#000000"


def mix(color: str, toward: str, amount: float) -> str:
    """`color` moved `amount` (0..1) of the way to `toward`."""
    (r1, g1, b1), (r2, g2, b2) = parse_hex(color), parse_hex(toward)
    return to_hex((r1 + (r2 - r1) * amount, g1 + (g2 - g1) * amount, b1 + (b2 - b1) * amount))


def readable_against(color: str, backgrounds: tuple[str, ...], toward: str) -> str:
    """`color`, darkened or lightened (toward black or white) just enough to reach 4.5:1."""
    for step in range(21):
        candidate = mix(color, toward, step / 20)
        if all(contrast_ratio(candidate, bg) >= MIN_CONTRAST for bg in backgrounds):
            return candidate
    return toward


@dataclass(frozen=True)
class Palette:
    """The accent and the colours derived from it."""

    accent: str
    accent_text: str
    accent_hover: str
    accent_hover_text: str
    link_light: str
    link_dark: str


@lru_cache(maxsize=16)
def palette(accent: str) -> Palette:
    """Every colour the pages need from one accent colour."""
    accent = accent.lower()
    text = readable_on(accent)
    # Hover: a little darker on light text, a little lighter on dark text, stays readable.
    hover = mix(accent, "#000000" if text == "#ffffff" else "#ffffff", 0.15)
    return Palette(
        accent=accent,
        accent_text=text,
        accent_hover=hover,
        accent_hover_text=readable_on(hover),
        link_light=readable_against(accent, LIGHT_BACKGROUNDS, "#000000"),
        link_dark=readable_against(accent, DARK_BACKGROUNDS, "#ffffff"),
    )


@lru_cache(maxsize=16)
def stylesheet(accent: str) -> str:
    """The CSS custom properties main.css uses, for light and dark colour schemes."""
    colors = palette(accent)
    return (
        f"/* Generated from AUTHSERVER_ACCENT_COLOR={colors.accent}. */\n"
        ":root {\n"
        f"  --accent: {colors.accent};\n"
        f"  --accent-text: {colors.accent_text};\n"
        f"  --accent-hover: {colors.accent_hover};\n"
        f"  --accent-hover-text: {colors.accent_hover_text};\n"
        f"  --link: {colors.link_light};\n"
        "}\n"
        "@media (prefers-color-scheme: dark) {\n"
        ":root {\n"
        f"  --link: {colors.link_dark};\n"
        "}\n"
        "}\n"
    )


def stylesheet_version(accent: str) -> str:
    """A short digest of the stylesheet: its ETag and the cache-busting URL parameter."""
    return hashlib.sha256(stylesheet(accent).encode()).hexdigest()[:16]


@bp.route("/branding.css")
def branding_css() -> Response:
    """The accent colour as CSS custom properties, cacheable by browsers and proxies."""
    accent = current_app.config["AUTHSERVER"].accent_color
    response = Response(stylesheet(accent), mimetype="text/css")
    response.set_etag(stylesheet_version(accent))
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.make_conditional(request)  # 304 when If-None-Match matches
    return response


@bp.app_context_processor
def branding_context() -> dict[str, Any]:
    """`branding` in every template: product name, logo and the stylesheet's URL."""
    config = current_app.config["AUTHSERVER"]
    return {
        "branding": {
            "product_name": config.product_name,
            "logo_url": config.logo_url,
            "stylesheet_url": url_for(
                "branding.branding_css", v=stylesheet_version(config.accent_color)
            ),
        }
    }
