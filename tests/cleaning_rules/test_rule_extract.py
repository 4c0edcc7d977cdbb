"""The extract action: a value copied out of a field into a field of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cleaning_rules.engine import load_packs
from cleaning_rules.errors import RulePackError
from cleaning_rules.examples import check_packs
from cleaning_rules.stage import CleaningStage
from pipelines.chain import Chain
from pipelines.cli import app
from pipelines.errors import ConfigError
from tests.cleaning_rules.conftest import OVERLAPPING, WritePack

TICKET = r"""
- id: demo.ticket.number
  description: the ticket a note refers to
  action: extract
  pattern: '(?<![A-Z0-9])(?P<queue>[A-Z]{2,5})-(?P<number>\d{1,6})\b'
  into: ticket
  value: '\g<queue>#\g<number>'
  examples:
    - {in: "see OPS-42 and DB-7", extracted: "OPS#42"}
    - {in: "no ticket here"}
"""
STRIP_TICKETS = r"""
- id: demo.ticket.strip
  description: ticket references removed from the text
  action: replace
  pattern: '\s*\b[A-Z]{2,5}-\d{1,6}\b'
  replacement: ''
  examples:
    - {in: "done OPS-42", out: "done"}
    - {in: "done"}
"""
DROP_SECRET = r"""
- id: demo.secret.drop
  description: notes marked secret are not kept
  action: drop_record
  pattern: 'SECRET'
  reason: secret note
  examples:
    - {in: "SECRET plan", verdict: drop}
    - {in: "plan"}
"""


def test_the_first_match_goes_to_the_new_field_through_the_template(
    write_pack: WritePack,
) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=TICKET))
    found = ruleset.apply("notes", {"text": "fixed in OPS-42, see DB-7", "id": 3})
    assert found.record == {"text": "fixed in OPS-42, see DB-7", "id": 3, "ticket": "OPS#42"}
    assert found.fired == ("demo.ticket.number",)
    nothing = ruleset.apply("notes", {"text": "no reference", "id": 4})
    assert nothing.record == {"text": "no reference", "id": 4}
    assert nothing.fired == ()
    assert ruleset.extracted_fields() == ruleset.extracted_fields("notes") == ("ticket",)
    assert ruleset.extracted_fields("orders") == ()


def test_an_extraction_reads_the_text_as_the_rules_before_it_left_it(
    write_pack: WritePack,
) -> None:
    stripped_first = load_packs(["demo"], write_pack(rules=STRIP_TICKETS + TICKET))
    result = stripped_first.apply("notes", {"text": "done OPS-42"})
    assert result.record == {"text": "done"}  # nothing left to extract
    extracted_first = load_packs(["demo"], write_pack(rules=TICKET + STRIP_TICKETS))
    result = extracted_first.apply("notes", {"text": "done OPS-42"})
    assert result.record == {"text": "done", "ticket": "OPS#42"}
    assert result.fired == ("demo.ticket.number", "demo.ticket.strip")


def test_the_rule_last_in_order_wins_a_field_two_rules_write(write_pack: WritePack) -> None:
    folder = write_pack(rules=TICKET, fields="title, text")
    ruleset = load_packs(["demo"], folder)
    both = ruleset.apply("notes", {"title": "OPS-1", "text": "DB-2"})
    assert both.record["ticket"] == "DB#2"  # the text comes after the title
    title_only = ruleset.apply("notes", {"title": "OPS-1", "text": "none"})
    assert title_only.record["ticket"] == "OPS#1"


def test_a_rejected_record_comes_back_as_it_came_in(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=TICKET + DROP_SECRET))
    result = ruleset.apply("notes", {"text": "SECRET OPS-42"})
    assert (result.verdict, result.rule_id) == ("drop", "demo.secret.drop")
    assert result.record == {"text": "SECRET OPS-42"}


def test_a_batch_extracts_what_record_by_record_extracts(write_pack: WritePack) -> None:
    folder = write_pack(rules=TICKET + STRIP_TICKETS + DROP_SECRET, fields="title, text")
    texts = ["OPS-1", "DB-22 and OPS-3", "none", "SECRET DB-4", "", "ABCDEF-1", "x OPS-9"]
    records = [
        {"title": texts[i % len(texts)], "text": texts[(i * 3) % len(texts)], "id": i}
        for i in range(40)
    ]
    batch = load_packs(["demo"], folder).apply_batch("notes", records)
    single = load_packs(["demo"], folder)
    assert batch == [single.apply("notes", record) for record in records]
    assert {r.record.get("ticket") for r in batch if r.verdict == "keep"} >= {"OPS#1", "OPS#9"}


def test_a_runaway_extraction_quarantines_the_record_with_the_rule_id(
    write_pack: WritePack,
) -> None:
    runaway = OVERLAPPING.replace("action: replace", "action: extract\n  into: tail").replace(
        "  replacement: ''\n", ""
    )
    ruleset = load_packs(["demo"], write_pack(rules=runaway), timeout=0.02)
    record = {"text": "a" * 40 + "b"}
    for result in (ruleset.apply("notes", record), ruleset.apply_batch("notes", [record])[0]):
        assert (result.verdict, result.rule_id, result.reason) == (
            "quarantine",
            "demo.overlapping",
            "timeout",
        )
        assert result.record == record


def test_extracting_into_a_field_a_pack_cleans_is_refused_with_file_and_line(
    write_pack: WritePack,
) -> None:
    clash = TICKET.replace("into: ticket", "into: title")
    folder = write_pack(rules=clash, fields="title, text")
    with pytest.raises(RulePackError, match=r"demo\.yaml:\d+: rule 'demo.ticket.number' "):
        load_packs(["demo"], folder)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (TICKET.replace('extracted: "OPS#42"', 'out: "x"'), "does not change text"),
        (STRIP_TICKETS.replace('out: "done"', 'extracted: "x"'), "only an extract rule"),
        (TICKET.replace(r"\g<number>", r"\g<missing>"), "invalid value template"),
        (TICKET.replace("into: ticket", "into: _ticket"), "into"),
    ],
)
def test_a_malformed_extract_rule_is_refused_at_load(
    write_pack: WritePack, rule: str, message: str
) -> None:
    with pytest.raises(RulePackError, match=message):
        load_packs(["demo"], write_pack(rules=rule))


def test_an_example_expecting_another_value_fails_with_both_values(
    write_pack: WritePack,
) -> None:
    folder = write_pack(rules=TICKET.replace('extracted: "OPS#42"', 'extracted: "DB#7"'))
    (failure,) = check_packs(["demo"], folder)
    assert (failure.problem, failure.expected, failure.actual) == (
        "wrong value extracted",
        "DB#7",
        "OPS#42",
    )


def _notes(texts: list[str], **extra: pa.Array) -> pa.Table:
    columns = {
        "text": pa.array(texts, pa.string()),
        "_entity": pa.array(["notes"] * len(texts), pa.string()),
        **extra,
    }
    return pa.table(columns)


def test_the_stage_adds_the_extracted_field_as_a_column(write_pack: WritePack) -> None:
    stage = CleaningStage(load_packs(["demo"], write_pack(rules=TICKET + DROP_SECRET)))
    batch = _notes(["OPS-1 done", "nothing", "SECRET DB-2", None])  # type: ignore[list-item]
    result = stage.process(batch)
    expected_schema = Chain([stage]).output_schema(batch.schema)
    assert result.kept.schema.names == [
        n for n in expected_schema.names if n in result.kept.schema.names
    ]
    assert result.kept.schema.field("ticket").type == pa.string()
    assert result.kept["ticket"].to_pylist() == ["OPS#1", None, None]
    assert result.dropped["text"].to_pylist() == ["SECRET DB-2"]
    assert "ticket" not in result.dropped.column_names  # rejected rows come as they came in
    empty = stage.process(batch.slice(0, 0))
    assert empty.kept.schema.names == result.kept.schema.names
    # A chain built for an entity the rule does not reach adds no column for it.
    other = CleaningStage(stage.ruleset, "orders")
    assert [f.name for f in other.added_fields] == ["_rules_version"]


def test_a_column_the_input_has_keeps_its_value_where_nothing_is_found(
    write_pack: WritePack,
) -> None:
    stage = CleaningStage(load_packs(["demo"], write_pack(rules=TICKET)))
    batch = _notes(["OPS-1", "none"], ticket=pa.array(["old#1", "old#2"], pa.string()))
    kept = stage.process(batch).kept
    assert kept["ticket"].to_pylist() == ["OPS#1", "old#2"]
    assert kept.column_names.count("ticket") == 1
    numbers = _notes(["OPS-1"], ticket=pa.array([7], pa.int64()))
    with pytest.raises(ConfigError, match="'ticket' is int64"):
        stage.process(numbers)


def test_rules_apply_prints_the_extracted_values() -> None:
    line = "ERROR refund failed traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    args = ["rules", "apply", "-p", "logs", "--entity", "app_logs", "--field", "message"]
    result = CliRunner().invoke(app, [*args, "--text", line, "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert row["out"] == line
    assert row["extracted"] == {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}
    assert row["fired"] == ["logs.extract.trace_id"]


def test_rules_preview_counts_an_extraction_and_shows_the_value(tmp_path: Path) -> None:
    traced = "GET /a 200 traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    lines = [{"message": traced}, {"message": "GET /b 200"}]
    data = tmp_path / "logs.jsonl"
    data.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    args = ["rules", "preview", "-p", "logs", "--input", str(data), "--entity", "app_logs"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rules"]["logs.extract.trace_id"]["changed"] == 1
    [row] = report["changed"]
    assert row["fired"] == ["logs.extract.trace_id"]
    assert row["changes"] == [
        {"field": "trace_id", "before": "", "after": "4bf92f3577b34da6a3ce929d0e0e4736"}
    ]
