"""``cleaning_rules.lint``: errors that stop a pack, warnings a steward should look at."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleaning_rules.engine import DEFAULT_PACK_DIR
from cleaning_rules.errors import RulePackError
from cleaning_rules.lint import backtracking_risks, lint_packs
from tests.cleaning_rules.conftest import WritePack

CATASTROPHIC = """\
- id: demo.slow
  description: a pattern with nested quantifiers
  action: replace
  pattern: '(a+)+b'
  replacement: 'B'
  examples:
    - {in: "aab", out: "B"}
    - {in: "xyz"}
"""

# Each rule is idempotent alone; together the second feeds the first, so a second pass over
# the rule set changes "a" again (a → b once, b → c twice).
NOT_IDEMPOTENT = """\
- id: demo.b_to_c
  description: b becomes c
  action: replace
  pattern: 'b'
  replacement: 'c'
  examples:
    - {in: "b", out: "c"}
    - {in: "xyz"}
- id: demo.a_to_b
  description: a becomes b, after b_to_c has run
  action: replace
  pattern: 'a'
  replacement: 'b'
  examples:
    - {in: "a", out: "b"}
    - {in: "xyz"}
"""


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+", "(a*)*", "(a|a)*", "(a|aa)+", r"(?:\w+\s?)*$", "(x+){2,}", r"(?P<n>\d+)*"],
)
def test_nested_and_overlapping_repeats_are_risks(pattern: str) -> None:
    assert backtracking_risks(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "a+b*",
        "(a+)++",
        "(?>a+)+",
        "(a|ab)*",
        "[(a+)]+",
        r"\(a+\)+",
        r"(?:,\d{3})+",
        r"\p{Han}+(?:\d{1,3})*",
        "(x+){2,5}",
        "(?i)(?P<x>a)(?P=x)+",
    ],
)
def test_bounded_possessive_and_literal_shapes_are_not(pattern: str) -> None:
    assert backtracking_risks(pattern) == []


def test_verbose_patterns_skip_comments() -> None:
    assert backtracking_risks("a+  # (b+)+ only in a comment\n", verbose=True) == []


def test_shipped_packs_have_no_errors() -> None:
    report = lint_packs(DEFAULT_PACK_DIR)
    assert report.ok, "\n".join(map(str, report.errors))
    assert set(report.packs) >= {"common", "finance", "logs", "medical"}


def test_catastrophic_pattern_is_a_warning_with_its_line(write_pack: WritePack) -> None:
    folder = write_pack(rules=CATASTROPHIC)
    report = lint_packs(folder)
    assert report.ok
    (warning,) = report.warnings
    assert (warning.code, warning.rule_id, warning.line) == ("backtracking", "demo.slow", 12)
    assert "(a+)+" in warning.message


def test_rule_set_that_undoes_itself_is_not_idempotent(write_pack: WritePack) -> None:
    folder = write_pack(rules=NOT_IDEMPOTENT)
    report = lint_packs(folder)
    assert report.ok, "\n".join(map(str, report.errors))
    (warning,) = report.warnings
    assert (warning.code, warning.rule_id, warning.line) == ("idempotence", "demo.a_to_b", 23)
    assert "once 'b', twice 'c'" in warning.message
    assert "demo.b_to_c" in warning.message


# The medical abbreviation map runs first, so the later replace rule never sees "bid"; the
# drop rule takes every record the quarantine rule is there for; the third replace rule
# still acts on one of its examples.
SHADOWED = """\
- id: demo.freq.map
  description: frequency abbreviations expanded
  action: map
  table: {bid: 每日两次}
  examples:
    - {in: "0.5g bid", out: "0.5g 每日两次"}
    - {in: "bidding"}
- id: demo.freq.english
  description: bid in English, written after the map that already took it
  action: replace
  pattern: '\\bbid\\b'
  replacement: 'twice daily'
  examples:
    - {in: "0.5g bid", out: "0.5g twice daily"}
    - {in: "bidding"}
- id: demo.test.drop
  description: test records dropped
  action: drop_record
  pattern: 'TEST'
  reason: a test record
  examples:
    - {in: "TEST order", verdict: drop}
    - {in: "order"}
- id: demo.test.quarantine
  description: test records quarantined, written after the drop that takes them all
  action: quarantine
  pattern: 'TEST'
  reason: looks like a test
  examples:
    - {in: "TEST order", verdict: quarantine}
    - {in: "order"}
- id: demo.freq.english_tid
  description: tid in English; one example still reaches it
  action: replace
  pattern: '\\b(?:bid|tid)\\b'
  replacement: 'often'
  examples:
    - {in: "bid", out: "often"}
    - {in: "tid", out: "often"}
    - {in: "x"}
"""


def test_a_rule_earlier_rules_leave_nothing_to_act_on_is_shadowed(write_pack: WritePack) -> None:
    report = lint_packs(write_pack(rules=SHADOWED))
    assert report.ok, "\n".join(map(str, report.errors))
    shadowed = [w for w in report.warnings if w.code == "shadowed"]
    assert [(w.rule_id, w.line) for w in shadowed] == [
        ("demo.freq.english", 16),
        ("demo.test.quarantine", 32),
    ]
    assert "once demo.freq.map ran" in shadowed[0].message
    assert "once demo.test.drop ran" in shadowed[1].message


def test_schema_errors_keep_every_issue_with_its_line(write_pack: WritePack) -> None:
    folder = write_pack(
        rules="""\
        - id: demo.one
          description: unknown action
          action: explode
          examples: [{in: "x"}]
        - id: demo.two
          description: no compile
          action: replace
          pattern: '(unclosed'
          replacement: ''
          examples: [{in: "x"}]
        """
    )
    report = lint_packs(folder / "demo.yaml")
    assert report.packs == ()
    # Line and column of the offending key: what an editor jumps to.
    assert [(e.code, e.line, e.column) for e in report.errors] == [
        ("schema", 11, 5),
        ("schema", 16, 5),
    ]
    assert str(report.errors[0]).startswith(f"{folder / 'demo.yaml'}:11:5: rules[0].action:")
    assert "unknown action 'explode'" in report.errors[0].message
    assert "does not compile" in report.errors[1].message


def test_failing_examples_and_duplicate_ids_are_errors(write_pack: WritePack) -> None:
    folder = write_pack(
        rules="""\
        - id: demo.x
          description: x to y
          action: replace
          pattern: 'x'
          replacement: 'y'
          examples:
            - {in: "x", out: "z"}
            - {in: "a"}
        """,
    )
    failing = lint_packs(folder)
    (error,) = failing.errors
    assert (error.code, error.rule_id, error.line) == ("example", "demo.x", 15)
    assert "expected='z' got='y'" in error.message
    write_pack(rules=CATASTROPHIC + CATASTROPHIC)
    duplicate = lint_packs(folder)
    assert [(e.code, e.line) for e in duplicate.errors] == [("schema", 17)]
    assert "duplicate rule id" in duplicate.errors[0].message


def test_missing_path_is_a_pack_error(tmp_path: Path) -> None:
    with pytest.raises(RulePackError, match="no such pack"):
        lint_packs(tmp_path / "nope")
