"""Fixtures for rule-pack tests: small packs written to a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

WritePack = Callable[..., Path]

# A rule that backtracks exponentially on a short near miss ("a" * 40 + "b"): the lint check
# flags it, and only the time limit stops it.
OVERLAPPING = r"""
- id: demo.overlapping
  description: overlapping branches under a quantifier, exponential on a short near miss
  action: replace
  pattern: '(a|aa)+$'
  replacement: ''
  examples: [{in: b}]
"""

HEADER = """\
pack: {name}
version: "1"
owner: tests
description: a pack written by a test
order: {order}
applies_to:
  - {{entity: {entity}, fields: [{fields}]}}
rules:
"""


@pytest.fixture
def write_pack(tmp_path: Path) -> WritePack:
    """Write ``<tmp>/packs/<name>.yaml`` from a rules block (YAML text, indented as a list
    under ``rules:``) or, with ``raw=``, from the whole file text; return the pack folder."""
    folder = tmp_path / "packs"
    folder.mkdir(exist_ok=True)

    def write(
        name: str = "demo",
        rules: str = "",
        *,
        raw: str | None = None,
        entity: str = "notes",
        fields: str = "text",
        order: int = 100,
    ) -> Path:
        header = HEADER.format(name=name, order=order, entity=entity, fields=fields)
        body = raw if raw is not None else header + textwrap.indent(textwrap.dedent(rules), "  ")
        (folder / f"{name}.yaml").write_text(body, encoding="utf-8")
        return folder

    return write
