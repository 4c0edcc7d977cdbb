"""Loading packs: every mistake a steward can make is reported as file:line: field: message."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cleaning_rules.engine import DEFAULT_PACK_DIR, load_packs
from cleaning_rules.errors import RulePackError
from cleaning_rules.examples import check_packs
from pipelines.errors import ConfigError, ExitCode

WritePack = Callable[..., Path]

GOOD_RULE = """
- id: demo.x
  description: x to y
  action: replace
  pattern: x
  replacement: y
  examples: [{in: x, out: y}, {in: z}]
"""


def load_error(folder: Path, name: str = "demo") -> RulePackError:
    with pytest.raises(RulePackError) as caught:
        load_packs([name], folder)
    return caught.value


def test_unknown_pack_names_the_name_and_the_folder() -> None:
    with pytest.raises(ConfigError) as caught:
        load_packs(["common", "no_such_pack"])
    message = str(caught.value)
    assert "no_such_pack" in message
    assert str(DEFAULT_PACK_DIR) in message
    assert "common" in message  # the packs that do exist are listed
    assert caught.value.exit_code == ExitCode.CONFIG


def test_pack_name_cannot_leave_the_folder(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE)
    assert "unknown rule pack '../packs/demo'" in str(load_error(folder, "../packs/demo"))


def test_invalid_yaml_names_file_and_line(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE + "- id: demo.y\n  pattern: [unclosed\n")
    error = load_error(folder)
    assert f"{folder / 'demo.yaml'}:" in str(error)
    assert error.issues[0].line >= 15  # the second rule starts on line 15


def test_unknown_action_names_file_and_line(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE.replace("action: replace", "action: rewrite"))
    error = load_error(folder)
    assert str(error).startswith(f"{folder / 'demo.yaml'}:12:5: rules[0].action: unknown action")
    assert "'rewrite'" in str(error)
    assert "replace" in str(error)  # the known actions are listed


def test_bad_pattern_names_line_and_position(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE.replace("pattern: x", "pattern: 'x(y'"))
    message = str(load_error(folder))
    assert message.startswith(f"{folder / 'demo.yaml'}:13:5: rules[0].pattern: does not compile")
    assert "position" in message


def test_han_property_compiles(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE.replace("pattern: x", r"pattern: '\p{Han}+x'"))
    ruleset = load_packs(["demo"], folder)
    assert ruleset.apply("notes", {"text": "阿莫西林x"}).record == {"text": "y"}


def test_duplicate_rule_id(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE + GOOD_RULE)
    message = str(load_error(folder))
    assert "rules[1].id: duplicate rule id" in message
    assert ":17:" in message  # the second definition


def test_duplicate_yaml_key_is_not_silently_dropped(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE.replace("pattern: x", "pattern: x\n  pattern: z"))
    message = str(load_error(folder))
    assert ":14:5: rules[0].pattern: duplicate key (first set on line 13)" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("replacement: y", "replacement: '\\2'"), "rules[0].replacement: invalid replacement"),
        (("replacement: y", "replacment: y"), "Extra inputs are not permitted"),
        (("id: demo.x", "id: other.x"), "rules[0].id: must start with 'demo.'"),
        (("id: demo.x", "id: Demo X"), "rules[0].id: String should match pattern"),
        (("pattern: x\n", "pattern: x\n  fields: [body]\n"), "body not among the pack's"),
        (("{in: x, out: y}", "{in: x, verdict: drop}"), "a text rule cannot give verdict"),
        (("examples: [{in: x, out: y}, {in: z}]", "examples: []"), "rules[0].examples"),
        (("  action: replace", "  flags: [IGNORECASE, GLOBAL]\n  action: replace"), "flags[1]"),
    ],
)
def test_rule_mistakes_are_reported(
    write_pack: WritePack, change: tuple[str, str], expected: str
) -> None:
    folder = write_pack(rules=GOOD_RULE.replace(*change))
    assert any(expected in str(issue) for issue in load_error(folder).issues)


def test_map_and_normalize_mistakes(write_pack: WritePack) -> None:
    folder = write_pack(
        rules="""
        - id: demo.map
          description: clashing keys
          action: map
          flags: [IGNORECASE]
          table: {bid: 每日两次, BID: 每日三次}
          examples: [{in: x}]
        """
    )
    assert "equal under IGNORECASE" in str(load_error(folder))
    folder = write_pack(
        rules="""
        - id: demo.norm
          description: a form that needs matches
          action: normalize
          form: ymd_date
          examples: [{in: x}]
        """
    )
    assert "form 'ymd_date' works on matches" in str(load_error(folder))
    folder = write_pack(
        rules="""
        - id: demo.norm
          description: unknown form
          action: normalize
          form: nfc
          examples: [{in: x}]
        """
    )
    assert "unknown form 'nfc' (known:" in str(load_error(folder))


def test_map_rejects_flags_that_do_not_apply(write_pack: WritePack) -> None:
    folder = write_pack(
        rules="""
        - id: demo.map
          description: a table read verbosely
          action: map
          flags: [VERBOSE]
          table: {iv gtt: 静脉滴注}
          examples: [{in: x}]
        """
    )
    assert "flags VERBOSE do not apply to a map table" in str(load_error(folder))


def test_load_packs_arguments() -> None:
    with pytest.raises(TypeError, match="list of pack names"):
        load_packs("common")
    with pytest.raises(ConfigError, match="positive number of seconds"):
        load_packs(["common"], timeout=0)


def test_yaml_types_are_not_coerced(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE)
    text = (folder / "demo.yaml").read_text().replace('version: "1"', "version: 1.0")
    write_pack(raw=text)
    assert "version: Input should be a valid string" in str(load_error(folder))


def test_file_name_must_match_pack_name(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE)
    text = (folder / "demo.yaml").read_text().replace("pack: demo", "pack: other")
    write_pack(raw=text)
    assert ":1: pack: must match the file name 'demo'" in str(load_error(folder))


def test_all_issues_are_kept_for_a_linter(write_pack: WritePack) -> None:
    broken = GOOD_RULE.replace("pattern: x", "pattern: 'x('").replace("description: x to y", "")
    error = load_error(write_pack(rules=broken))
    assert len(error.issues) == 2
    assert "(and 1 more)" in str(error)


def test_failing_example_names_the_rule_and_line(write_pack: WritePack) -> None:
    folder = write_pack(rules=GOOD_RULE.replace("{in: z}", "{in: zx}"))
    (failure,) = check_packs(["demo"], folder)
    assert (failure.rule_id, failure.problem, failure.actual) == ("demo.x", "wrong output", "zy")
    assert str(failure).startswith(f"{folder / 'demo.yaml'}:15: demo.x: wrong output")


def test_a_rule_that_rewrites_its_own_output_fails(write_pack: WritePack) -> None:
    folder = write_pack(
        rules=GOOD_RULE.replace("replacement: y", "replacement: xx").replace("out: y", "out: xx")
    )
    (failure,) = check_packs(["demo"], folder)
    assert failure.problem == "changes its own output again"
