"""``steward rules preview`` on real Parquet and JSON Lines files, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()

ORDERS = [
    {"id": 1, "prescription": "阿莫西林 0.5g po bid", "drug": "阿莫西林", "dose": "500 毫克"},
    {"id": 2, "prescription": "测试", "drug": "测试"},
    {"id": 3, "prescription": "布洛芬 0.2g", "notes": "饭后服用"},
    {"id": 4, "prescription": "0.5g po bid", "drug": "阿莫西林"},
    {"id": 5, "prescription": "地西泮 5mg hs", "dose": None},
]
MEDICAL = ["rules", "preview", "-p", "common", "-p", "medical"]


def one_line(text: str) -> str:
    # The error console wraps long messages at its width; the message itself is one line.
    return " ".join(text.split())


def write_jsonl(path: Path, rows: list[dict[str, object]], blank_after: int = 1) -> Path:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    lines.insert(blank_after, "")  # blank lines are skipped but counted
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_preview_shows_changes_drops_and_quarantines_with_lines(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "orders.jsonl", ORDERS)
    args = [*MEDICAL, "--input", str(data), "--entity", "medical_orders"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"on {data}: 5 rows (5 medical_orders)" in out
    assert "changed 2 rows (3 values), dropped 1, quarantined 1, unchanged 1" in out
    # Line 2 is the blank one: the dropped row is on line 3, the quarantined one on line 5.
    assert f"{data}:3: medical.record.test on prescription:" in out
    assert f"{data}:5: medical.record.no_drug on prescription:" in out
    assert f"{data}:1: medical.freq.latin, medical.route, medical.unit.mg" in out
    assert "      - 阿莫西林 0.5g po bid\n      + 阿莫西林 0.5g 口服 每日两次" in out
    assert "      - 500 毫克\n      + 500mg" in out
    table = {
        line.split()[0]: line.split()[1:] for line in out.splitlines() if line[:8] == "medical."
    }
    assert table["medical.freq.latin"] == ["1", "0", "0"]
    assert table["medical.freq.hs"] == ["1", "0", "0"]
    assert table["medical.record.test"] == ["0", "1", "0"]
    assert table["medical.record.no_drug"] == ["0", "0", "1"]


def test_json_report_and_n_limit_the_rows_shown_not_the_counts(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "orders.jsonl", ORDERS)
    args = [*MEDICAL, "-i", str(data), "--entity", "medical_orders", "--n", "1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["changed_rows"], report["changed_fields"]) == (5, 2, 3)
    assert (report["dropped_rows"], report["quarantined_rows"]) == (1, 1)
    assert len(report["changed"]) == 1
    assert report["changed"][0] == {
        "where": f"{data}:1",
        "fired": ["medical.freq.latin", "medical.route", "medical.unit.mg"],
        "changes": [
            {
                "field": "prescription",
                "before": "阿莫西林 0.5g po bid",
                "after": "阿莫西林 0.5g 口服 每日两次",
            },
            {"field": "dose", "before": "500 毫克", "after": "500mg"},
        ],
    }
    assert report["dropped"] == [
        {
            "where": f"{data}:3",
            "verdict": "drop",
            "rule_id": "medical.record.test",
            "reason": "test order entered while trying the system",
            "field": "prescription",
            "value": "测试",
        }
    ]


def test_parquet_rows_of_several_entities_by_their_entity_column(tmp_path: Path) -> None:
    rows = [
        {"_entity": "medical_orders", "prescription": "阿莫西林 0.5g po bid", "title": None},
        {"_entity": "invoices", "prescription": None, "title": "N/A"},
        {"_entity": "invoices", "prescription": None, "title": "ＡＢＣ（中国）有限公司"},  # noqa: RUF001
        {"_entity": "medical_orders", "prescription": "布洛芬 0.2g", "title": None},
    ]
    data = tmp_path / "mixed.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    args = ["rules", "preview", "-p", "common", "-p", "medical", "-p", "finance", "-i", str(data)]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entities"] == {"medical_orders": 2, "invoices": 2}
    assert [row["where"] for row in report["changed"]] == [f"{data} row 1", f"{data} row 3"]
    assert report["changed"][1]["changes"] == [
        {"field": "title", "before": "ＡＢＣ（中国）有限公司", "after": "ABC(中国)有限公司"}  # noqa: RUF001
    ]
    assert report["quarantined"][0]["where"] == f"{data} row 2"
    assert report["quarantined"][0]["rule_id"] == "finance.title.missing"


def test_field_limits_what_is_cleaned(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "orders.jsonl", ORDERS)
    args = [*MEDICAL, "-i", str(data), "--entity", "medical_orders", "--field", "dose", "--json"]
    report = json.loads(runner.invoke(app, args).stdout)
    # Only dose is cleaned: the test order and the prescription without a drug stay.
    assert (report["rows"], report["dropped_rows"], report["quarantined_rows"]) == (5, 0, 0)
    assert [row["changes"] for row in report["changed"]] == [
        [{"field": "dose", "before": "500 毫克", "after": "500mg"}]
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prescription": "x"}\n{"prescription": "y",\n', ":2: not valid JSON (Expecting"),
        ('{"prescription": "x"}\n\n["a list"]\n', ":3: a row must be a JSON object, not list"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content, encoding="utf-8")
    result = runner.invoke(app, [*MEDICAL, "-i", str(data), "--entity", "medical_orders"])
    assert result.exit_code == 4
    assert f"{data}{message}" in one_line(result.stderr)
    assert "Traceback" not in result.output


def test_input_errors_are_one_line_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.parquet"
    result = runner.invoke(app, [*MEDICAL, "-i", str(missing), "--entity", "medical_orders"])
    assert result.exit_code == 4
    assert f"SourceError (terminal): {missing}: no such file" in one_line(result.stderr)

    table = tmp_path / "orders.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": 1, "prescription": "x"}]), table)
    args = [*MEDICAL, "-i", str(table), "--entity", "medical_orders"]
    no_column = runner.invoke(app, [*args, "--field", "dose"])
    assert no_column.exit_code == 4
    assert f"{table}: no column 'dose' (columns: id, prescription)" in one_line(no_column.stderr)
    not_cleaned = runner.invoke(app, [*args, "--field", "id"])
    assert not_cleaned.exit_code == 3
    assert "do not clean field 'id' of entity 'medical_orders'" in one_line(not_cleaned.stderr)

    no_entity = runner.invoke(app, [*MEDICAL, "-i", str(table)])
    assert no_entity.exit_code == 3
    assert f"{table} row 1: no _entity value; name the entity" in one_line(no_entity.stderr)

    csv = tmp_path / "orders.csv"
    csv.write_text("prescription\nx\n", encoding="utf-8")
    unknown = runner.invoke(app, [*MEDICAL, "-i", str(csv), "--entity", "medical_orders"])
    assert unknown.exit_code == 4
    assert f"{csv}: unknown input format '.csv'" in one_line(unknown.stderr)

    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("not parquet", encoding="utf-8")
    broken = runner.invoke(app, [*MEDICAL, "-i", str(not_parquet), "--entity", "medical_orders"])
    assert broken.exit_code == 4
    assert f"{not_parquet}: not a readable Parquet file" in one_line(broken.stderr)
