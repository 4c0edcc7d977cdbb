"""Applying rule sets to records: verdicts, word boundaries, time limits, versions."""

from __future__ import annotations

import pickle
import time
from typing import Any

import pytest

from cleaning_rules import plan as plan_module
from cleaning_rules.engine import RecordResult, RuleSet, load_packs
from cleaning_rules.plan import REMEMBERED_LENGTH
from tests.cleaning_rules.conftest import OVERLAPPING, WritePack

MEDICAL = load_packs(["common", "medical"])


def clean(prescription: str) -> RecordResult:
    return MEDICAL.apply("medical_orders", {"prescription": prescription})


def test_map_expands_a_frequency_inside_mixed_text() -> None:
    result = clean("阿莫西林 0.5g bid")
    assert result.verdict == "keep"
    assert "每日两次" in str(result.record["prescription"])
    assert "medical.freq.latin" in result.fired


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("阿莫西林胶囊0.5g口服bid", "阿莫西林胶囊0.5g口服每日两次"),  # Han next to it: a word
        ("阿莫西林 bidding 价格", "阿莫西林 bidding 价格"),  # a longer Latin word
        ("阿莫西林 bid2", "阿莫西林 bid2"),  # a digit glued to it
        ("阿莫西林 BID", "阿莫西林 每日两次"),  # any case
    ],
)
def test_map_word_boundaries(text: str, expected: str) -> None:
    assert clean(text).record["prescription"] == expected


def test_packs_run_in_order_on_one_field() -> None:
    # common folds the full-width letters first, so medical's table sees "bid" and "mg".
    result = clean("  布洛芬　０.２ｇ　ｐｏ　ＢＩＤ  ")  # noqa: RUF001 (full-width on purpose)
    assert result.record["prescription"] == "布洛芬 0.2g 口服 每日两次"
    assert result.fired[0] == "common.unicode.nfkc"


def test_only_named_string_fields_change_in_a_new_dict() -> None:
    record = {"prescription": "阿莫西林 0.5g bid", "dose": None, "drug": 5, "other": "bid"}
    result = MEDICAL.apply("medical_orders", record)
    assert result.record == {
        "prescription": "阿莫西林 0.5g 每日两次",
        "dose": None,
        "drug": 5,
        "other": "bid",
    }
    assert record["prescription"] == "阿莫西林 0.5g bid"  # the input is not modified
    assert MEDICAL.apply("unknown_entity", record).record == record


def test_quarantine_names_rule_reason_and_field_and_keeps_the_input() -> None:
    record = {"prescription": "  ｂｉｄ  ", "drug": "阿莫西林"}  # noqa: RUF001
    result = MEDICAL.apply("medical_orders", record)
    assert result.verdict == "quarantine"
    assert result.rule_id == "medical.record.no_drug"
    assert result.reason == "prescription is empty or names no drug"
    assert result.field == "prescription"
    assert result.record == record


def test_drop_record() -> None:
    result = MEDICAL.apply("medical_orders", {"drug": "测试", "prescription": "x"})
    assert (result.verdict, result.rule_id) == ("drop", "medical.record.test")


def test_fields_for() -> None:
    assert MEDICAL.fields_for("medical_orders") == {"prescription", "drug", "dose", "notes"}
    assert MEDICAL.fields_for("customers") == {"name", "address", "city"}
    assert MEDICAL.fields_for("nobody") == set()


def test_any_entity_selector(write_pack: WritePack) -> None:
    folder = write_pack(
        rules="""
        - id: demo.upper
          description: x to y
          action: replace
          pattern: x
          replacement: y
          examples: [{in: x, out: y}]
        """,
        entity='"*"',
    )
    ruleset = load_packs(["demo"], folder)
    assert ruleset.apply("anything", {"text": "xx"}).record == {"text": "yy"}
    assert ruleset.fields_for("other") == {"text"}


def test_catastrophic_regex_quarantines_quickly(write_pack: WritePack) -> None:
    folder = write_pack(
        rules=r"""
        - id: demo.nested
          description: nested quantifiers, exponential on a near miss
          action: replace
          pattern: '(a+)+$'
          replacement: ''
          examples: [{in: b}]
        - id: demo.after
          description: never reached for the slow record
          action: replace
          pattern: b
          replacement: c
          examples: [{in: a}]
        """
    )
    ruleset = load_packs(["demo"], folder, timeout=0.02)
    started = time.perf_counter()
    result = ruleset.apply("notes", {"text": "a" * 5000 + "b", "id": 7})
    assert time.perf_counter() - started < 1.0
    assert (result.verdict, result.rule_id, result.reason) == (
        "quarantine",
        "demo.nested",
        "timeout",
    )
    assert result.record == {"text": "a" * 5000 + "b", "id": 7}
    # The run goes on: the next record is cleaned as usual.
    assert ruleset.apply("notes", {"text": "ba"}).record == {"text": "c"}


def counting_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The values the engine runs through a field's rules from now on (not remembered ones)."""
    runs: list[str] = []
    original = plan_module.run_field

    def run_field(*args: Any) -> Any:
        runs.append(args[1])
        return original(*args)

    monkeypatch.setattr(plan_module, "run_field", run_field)
    return runs


def test_record_path_remembers_short_values(monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load_packs(["common", "medical"])
    runs = counting_runs(monkeypatch)
    first = ruleset.apply("medical_orders", {"id": 1, "prescription": "阿莫西林 0.5g bid"})
    second = ruleset.apply("medical_orders", {"id": 2, "prescription": "阿莫西林 0.5g bid"})
    assert runs == ["阿莫西林 0.5g bid"]
    assert second.record == {**first.record, "id": 2} and second.fired == first.fired
    long_text = "阿莫西林 0.5g bid " * 20  # past REMEMBERED_LENGTH: cleaned every time
    for _ in range(2):
        ruleset.apply("medical_orders", {"prescription": long_text})
    assert runs[1:] == [long_text, long_text] and len(long_text) > REMEMBERED_LENGTH


def test_remembered_decision_leaves_the_earliest_rule_deciding(write_pack: WritePack) -> None:
    # b is decided by the first rule, a by the second: whichever field's outcome is
    # remembered, the record's decision goes to the rule that comes first.
    folder = write_pack(
        rules="""
        - id: demo.b_first
          description: x in b
          action: quarantine
          fields: [b]
          pattern: x
          reason: x in b
          examples: [{in: x, verdict: quarantine}]
        - id: demo.a_second
          description: x in a
          action: drop_record
          fields: [a]
          pattern: x
          reason: x in a
          examples: [{in: x, verdict: drop}]
        """,
        fields="a, b",
    )
    ruleset = load_packs(["demo"], folder)
    ruleset.apply("notes", {"a": "x", "b": "y"})  # a's outcome (a drop) is remembered
    result = ruleset.apply("notes", {"a": "x", "b": "x"})
    assert (result.verdict, result.rule_id, result.field) == ("quarantine", "demo.b_first", "b")


def test_timeout_is_not_remembered(write_pack: WritePack, monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=OVERLAPPING), timeout=0.02)
    runs = counting_runs(monkeypatch)
    near_miss = "a" * 40 + "b"  # short enough to be remembered, were it not a timeout
    for _ in range(2):
        assert ruleset.apply("notes", {"text": near_miss}).reason == "timeout"
    assert runs == [near_miss, near_miss]


def test_version_is_stable_and_order_free() -> None:
    assert load_packs(["medical", "common"]).version == MEDICAL.version
    assert load_packs(["common", "medical"]).version == MEDICAL.version
    assert load_packs(["common"]).version != MEDICAL.version
    assert len(MEDICAL.version) == 12
    assert MEDICAL.pack_names == ["common", "medical"]  # application order, by pack `order`


RULE = """
- id: demo.rule
  description: x to y
  action: replace
  pattern: {pattern}
  replacement: y
  examples: [{{in: {example}, out: y}}]
"""


def test_version_changes_with_a_rule_but_not_with_examples(write_pack: WritePack) -> None:
    folder = write_pack(rules=RULE.format(pattern="x", example="x"))
    before = load_packs(["demo"], folder).version
    write_pack(rules=RULE.format(pattern="x", example="x") + "  # a comment\n")
    assert load_packs(["demo"], folder).version == before
    write_pack(rules=RULE.format(pattern="'x+'", example="xx"))
    assert load_packs(["demo"], folder).version != before


def test_ruleset_pickles_for_spark_and_flink_workers() -> None:
    copy = pickle.loads(pickle.dumps(MEDICAL))
    assert isinstance(copy, RuleSet)
    assert copy.version == MEDICAL.version
    assert copy.timeout == MEDICAL.timeout
    assert copy.apply("medical_orders", {"prescription": "阿莫西林 bid"}) == clean("阿莫西林 bid")


def test_finance_and_logs_end_to_end() -> None:
    ruleset = load_packs(["common", "finance", "logs"])
    notes = "合计 ¥1,234.5，2024年3月5日"  # noqa: RUF001 (a Chinese comma on purpose)
    invoice = ruleset.apply("invoices", {"title": "某某公司", "notes": notes})
    assert invoice.record["notes"] == "合计 1234.50元,2024-03-05"
    line = ruleset.apply("app_logs", {"message": "\x1b[31mERROR\x1b[0m disk full\x07"})
    assert line.record["message"] == "ERROR disk full"
    assert ruleset.apply("app_logs", {"message": "\x1b[0m"}).verdict == "drop"
    untitled = ruleset.apply("invoices", {"title": "Ｎ／Ａ"})  # noqa: RUF001
    assert (untitled.verdict, untitled.rule_id) == ("quarantine", "finance.title.missing")
