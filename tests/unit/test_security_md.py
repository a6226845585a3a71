"""SECURITY.md names the tests that prove each rule: every name it gives must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# `functional/test_x.py::test_y` or `unit/pkg/test_x.py::test_y` (a [param] suffix allowed).
NAME = re.compile(r"`((?:functional|unit|browser)/[\w/]+\.py)::(\w+)(?:\[[^\]`]*\])?`")


def test_every_test_named_in_security_md_exists() -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    named = NAME.findall(text)
    assert len(named) > 100  # the document is read, not skipped
    missing = []
    for path, name in sorted(set(named)):
        source = ROOT / "tests" / path
        functions = (
            {
                node.name
                for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
                if isinstance(node, ast.FunctionDef)
            }
            if source.exists()
            else set()
        )
        if name not in functions:
            missing.append(f"{path}::{name}")
    assert not missing, f"SECURITY.md names tests that do not exist: {missing}"
