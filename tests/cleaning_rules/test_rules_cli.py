"""``steward rules test``, ``apply`` and ``lint`` through the real CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipelines.cli import app
from tests.cleaning_rules.conftest import WritePack
from tests.cleaning_rules.test_lint import CATASTROPHIC, NOT_IDEMPOTENT

runner = CliRunner()

WRONG_EXAMPLE = """\
- id: demo.units
  description: milligrams to mg
  action: replace
  pattern: '毫克'
  replacement: 'mg'
  examples:
    - {in: "5毫克", out: "5 mg"}
    - {in: "5g"}
"""


def test_test_passes_on_the_shipped_packs() -> None:
    result = runner.invoke(app, ["rules", "test"])
    assert result.exit_code == 0, result.output
    assert "all passed" in result.stdout


def test_test_prints_a_failure_as_a_diff_and_exits_1(write_pack: WritePack) -> None:
    folder = write_pack(rules=WRONG_EXAMPLE)
    result = runner.invoke(app, ["rules", "test", str(folder)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any("demo.yaml:15: demo.units: wrong output" in line for line in lines)
    assert "  - 5 mg" in lines and "  + 5mg" in lines
    assert lines[-1] == "2 examples of 1 rules in 1 packs: 1 failed"
    as_json = json.loads(runner.invoke(app, ["rules", "test", str(folder), "--json"]).stdout)
    assert as_json["failures"][0] | {"path": None} == {
        "rule_id": "demo.units",
        "path": None,
        "line": 15,
        "problem": "wrong output",
        "in": "5毫克",
        "expected": "5 mg",
        "actual": "5mg",
    }


def test_test_of_an_invalid_pack_is_one_line_with_exit_3(write_pack: WritePack) -> None:
    folder = write_pack(raw="pack: demo\nrules: [\n")
    result = runner.invoke(app, ["rules", "test", str(folder / "demo.yaml")])
    assert result.exit_code == 3
    assert "demo.yaml:" in result.stderr and "Traceback" not in result.output


def test_apply_prints_the_result_and_the_rules_that_fired() -> None:
    args = ["rules", "apply", "--pack", "common", "--pack", "medical"]
    args += ["--entity", "medical_orders", "--field", "prescription"]
    result = runner.invoke(app, [*args, "--text", "阿莫西林 0.5g bid"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["阿莫西林 0.5g 每日两次", "  fired: medical.freq.latin"]
    piped = runner.invoke(
        app, [*args, "--text", "-", "--json"], input="bidding\n阿莫西林 口服 qd\n"
    )
    rows = [json.loads(line) for line in piped.stdout.splitlines()]
    assert [(row["out"], row["verdict"], row["fired"]) for row in rows] == [
        ("bidding", "keep", []),
        ("阿莫西林 口服 每日一次", "keep", ["medical.freq.latin"]),
    ]


def test_apply_shows_a_quarantine_with_its_rule() -> None:
    args = ["rules", "apply", "-p", "finance", "--entity", "invoices", "--field", "title"]
    result = runner.invoke(app, [*args, "--text", "N/A"])
    assert result.exit_code == 0, result.output
    assert "  quarantine by finance.title.missing:" in result.stdout


def test_apply_to_a_field_no_pack_cleans_is_an_error() -> None:
    args = ["rules", "apply", "-p", "finance", "--entity", "invoices", "--field", "nope"]
    result = runner.invoke(app, [*args, "--text", "x"])
    assert result.exit_code == 3
    assert "do not clean field 'nope'" in result.stderr
    unknown = runner.invoke(app, [*args[:3], "nosuch", *args[4:], "--text", "x"])
    assert unknown.exit_code == 3 and "unknown rule pack 'nosuch'" in unknown.stderr


def test_lint_exits_0_with_warnings_listed_apart(write_pack: WritePack) -> None:
    folder = write_pack(rules=CATASTROPHIC + NOT_IDEMPOTENT)
    result = runner.invoke(app, ["rules", "lint", str(folder)])
    assert result.exit_code == 0, result.output
    assert "errors:" not in result.stdout
    warnings = result.stdout.split("warnings:\n")[1].splitlines()
    assert any("demo.slow" in line and "[backtracking]" in line for line in warnings)
    assert any("demo.a_to_b" in line and "[idempotence]" in line for line in warnings)
    assert warnings[-1] == "1 packs: 0 errors, 2 warnings"


def test_lint_exits_1_on_errors_and_reports_json(write_pack: WritePack) -> None:
    folder = write_pack(rules=WRONG_EXAMPLE)
    result = runner.invoke(app, ["rules", "lint", str(folder), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["packs"] == ["demo"]
    assert [(e["code"], e["rule_id"], e["line"]) for e in report["errors"]] == [
        ("example", "demo.units", 15)
    ]


def test_lint_of_the_shipped_packs_has_no_errors() -> None:
    result = runner.invoke(app, ["rules", "lint"])
    assert result.exit_code == 0, result.output
    assert "errors:" not in result.stdout
