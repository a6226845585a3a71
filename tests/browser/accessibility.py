"""axe-core in the browser: WCAG 2.0 and 2.1, levels A and AA, and axe's best practices.

axe-core comes inside the axe-playwright-python package (nothing is downloaded at
run time). A full axe run costs a quarter of a second, and the journeys pass the
same page many times, so axe runs once per distinct page *structure* in a test
session: the elements with their ids, classes, roles, ARIA state and whether they
hold text, plus the colour scheme and viewport width. A page that differs only in
its words (an e-mail address, a token) is the same page to axe; one that shows an
error, a new field or another layout is checked again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import Page

WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": [*WCAG_TAGS, "best-practice"]},
    "resultTypes": ["violations"],
}
STRUCTURE_SCRIPT = """() => [
  matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light',
  String(innerWidth),
  ...Array.from(document.querySelectorAll('body *')).map(e => [
    e.tagName, e.id, e.getAttribute('class') || '', e.getAttribute('role') || '',
    e.getAttribute('type') || '', e.getAttribute('aria-invalid') || '',
    e.getAttribute('aria-describedby') || '', e.hidden ? 'hidden' : '',
    Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()) ? 'text' : ''
  ].join('/'))
].join('|')"""


@dataclass
class Accessibility:
    """Runs axe on pages it has not seen the like of; shared by the whole session."""

    axe: Axe
    checked: dict[str, str] = field(default_factory=dict)

    def check(self, page: Page, where: str, report: Path, force: bool = False) -> None:
        """axe-core on the page: write every violation down, then fail on them."""
        structure = hashlib.sha256(page.evaluate(STRUCTURE_SCRIPT).encode()).hexdigest()
        if structure in self.checked and not force:
            return
        self.checked[structure] = where
        results = self.axe.run(page, options=AXE_OPTIONS).response
        assert results["testEngine"]["name"] == "axe-core", results.get("testEngine")
        violations: list[dict[str, Any]] = results["violations"]
        lines = [
            f"{where} {page.url}: {v['id']} ({v['impact']}) {v['help']} -> "
            f"{[node['target'] for node in v['nodes']]}"
            for v in violations
        ]
        if lines:
            report.parent.mkdir(parents=True, exist_ok=True)
            with report.open("a") as out:
                out.write("\n".join(lines) + "\n")
        # A WCAG A or AA rule is a conformance failure whatever its impact; axe's best
        # practices are advice, written down but not failed on.
        failing = [
            line
            for violation, line in zip(violations, lines, strict=True)
            if set(violation["tags"]) & set(WCAG_TAGS)
        ]
        assert not failing, "accessibility violations:\n" + "\n".join(failing)
