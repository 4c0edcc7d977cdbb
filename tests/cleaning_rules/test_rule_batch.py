"""``RuleSet.apply_batch``: the same results as ``apply``, record by record."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cleaning_rules.engine import ColumnsResult, available_packs, load_packs
from cleaning_rules.pack import ANY_ENTITY

WritePack = Callable[..., Path]
SHIPPED = load_packs(available_packs())
# Every example text of every shipped rule, before and after: values each rule is about.
TEXTS = sorted(
    {
        text
        for pack in SHIPPED.packs
        for spec in pack.spec.rules
        for example in spec.examples
        for text in (example.text, example.expected_text)
    }
)
ENTITIES = sorted(
    {
        selector.entity
        for pack in SHIPPED.packs
        for selector in pack.spec.applies_to
        if selector.entity != ANY_ENTITY
    }
)


@pytest.mark.parametrize("entity", ENTITIES)
def test_batch_equals_record_by_record_on_every_example_text(entity: str) -> None:
    rng = random.Random(entity)
    fields = sorted(SHIPPED.fields_for(entity))
    records: list[dict[str, object]] = [
        {"id": n, **{f: rng.choice([*TEXTS, None, 7]) for f in fields}} for n in range(600)
    ]
    records += records[:50]  # repeated rows share their outcomes
    batch = load_packs(available_packs())  # its own: outcomes remembered from no other test
    results = batch.apply_batch(entity, records)
    # Record by record on another rule set, so that neither path reads what the other
    # remembered; the batch again, with every short value remembered from the first time.
    by_record = load_packs(available_packs())
    assert results == [by_record.apply(entity, record) for record in records]
    assert batch.apply_batch(entity, records) == results
    # The texts exercise both kinds of outcome on every entity.
    assert any(result.fired for result in results)
    assert any(result.verdict != "keep" for result in results)
    # Column by column, the same results without a record per row.
    columns = {f: [record.get(f) for record in records] for f in ["id", *fields]}
    by_column = load_packs(available_packs()).apply_columns(entity, columns, len(records))
    assert as_records(by_column, columns) == [
        (r.verdict, r.rule_id, r.reason, r.field, r.record) for r in results
    ]


def as_records(result: ColumnsResult, given: dict[str, list[object]]) -> list[tuple[object, ...]]:
    """``apply_columns``' result row by row, as ``apply_batch`` gives each record."""
    out = []
    for row, verdict in enumerate(result.verdicts):
        if verdict == "keep":
            record = {f: values[row] for f, values in result.columns.items()}
            record.update(
                (f, values[row])
                for f, values in result.extracted.items()
                if values[row] is not None
            )
        else:
            record = {f: values[row] for f, values in given.items()}
        decided = (result.rule_ids[row], result.reasons[row], result.fields[row])
        out.append((verdict, *decided, record))
    return out


RULE_ORDER = """
- id: demo.mark_b
  description: b fields holding x are quarantined
  action: quarantine
  fields: [b]
  pattern: x
  reason: x in b
  examples: [{in: x, verdict: quarantine}, {in: y}]
- id: demo.a_to_x
  description: a becomes x
  action: replace
  pattern: a
  replacement: x
  examples: [{in: a, out: x}, {in: y}]
- id: demo.drop_a
  description: a fields holding x are dropped
  action: drop_record
  fields: [a]
  pattern: x
  reason: x in a
  examples: [{in: x, verdict: drop}, {in: y}]
"""


def test_the_earliest_rule_decides_whatever_the_field_order(write_pack: WritePack) -> None:
    # Fields a then b; rules quarantine-on-b before drop-on-a: the quarantine decides.
    ruleset = load_packs(["demo"], write_pack(rules=RULE_ORDER, fields="a, b"))
    record = {"a": "a", "b": "x"}
    for result in (ruleset.apply("notes", record), ruleset.apply_batch("notes", [record])[0]):
        assert (result.verdict, result.rule_id, result.field) == ("quarantine", "demo.mark_b", "b")
        assert result.fired == ()  # a became x after the quarantine, in rule order
        assert result.record == record
    kept = {"a": "a", "b": "y"}
    for result in (ruleset.apply("notes", kept), ruleset.apply_batch("notes", [kept])[0]):
        assert (result.verdict, result.rule_id, result.fired) == (
            "drop",
            "demo.drop_a",
            ("demo.a_to_x",),
        )


CHAIN = """
- id: demo.a_to_b
  description: a becomes b
  action: replace
  pattern: a
  replacement: b
  examples: [{in: a, out: b}, {in: y}]
- id: demo.b_to_c
  description: b becomes c, so a text holding no b at first may need it after a_to_b
  action: replace
  pattern: b
  replacement: c
  examples: [{in: b, out: c}, {in: y}]
"""


def test_a_rule_sees_what_an_earlier_rule_wrote(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=CHAIN))
    records = [{"text": "xax"}, {"text": "yy"}, {"text": "xax"}]
    assert [r.record["text"] for r in ruleset.apply_batch("notes", records)] == ["xcx", "yy", "xcx"]
    assert ruleset.apply("notes", records[0]).fired == ("demo.a_to_b", "demo.b_to_c")
    # Decoded entities are cleaned by the rules after them (a zero-width space here).
    common = load_packs(["common"])
    assert common.apply_batch("orders", [{"note": "x&#8203;y"}])[0].record == {"note": "xy"}


SLOW = r"""
- id: demo.nested
  description: nested quantifiers, exponential on a near miss
  action: replace
  pattern: '(a+)+$'
  replacement: 'A'
  examples: [{in: b}]
"""


def test_a_runaway_value_in_a_batch_quarantines_its_records_only(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=SLOW), timeout=0.02)
    slow = "a" * 5000 + "b"
    records = [{"text": "aa"}, {"text": slow}, {"text": "b"}, {"text": slow}, {"text": "a"}]
    started = time.perf_counter()
    results = ruleset.apply_batch("notes", records)
    assert time.perf_counter() - started < 2.0
    assert [(r.verdict, r.rule_id, r.reason) for r in results] == [
        ("keep", None, None),
        ("quarantine", "demo.nested", "timeout"),
        ("keep", None, None),
        ("quarantine", "demo.nested", "timeout"),
        ("keep", None, None),
    ]
    assert [r.record["text"] for r in results] == ["A", slow, "b", slow, "A"]
