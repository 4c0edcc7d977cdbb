"""``steward privacy scan`` and ``budget`` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app
from privacy.accounting import LaplaceMechanism
from privacy.ledger import BudgetLedger
from privacy.policy import Budget

runner = CliRunner()


def test_scan_json_has_offsets_and_no_text_unless_shown(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_text("手机13800138000\nnothing\n", encoding="utf-8")
    result = runner.invoke(app, ["privacy", "scan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["findings"][0] | {"explanation": None} == {
        "type": "CN_MOBILE",
        "start": 2,
        "end": 13,
        "score": 0.95,
        "explanation": None,
    }
    assert "13800138000" not in result.stdout and second == {"line": 2, "findings": []}
    shown = runner.invoke(app, ["privacy", "scan", "-", "--json", "--show"], input="a@b.com\n")
    assert json.loads(shown.stdout)["findings"][0]["text"] == "a@b.com"


def test_scan_errors_are_one_line_with_exit_code() -> None:
    result = runner.invoke(app, ["privacy", "scan", "/no/such/file"])
    assert result.exit_code == 3
    result = runner.invoke(app, ["privacy", "scan", "-", "--types", "NOPE"], input="x\n")
    assert result.exit_code == 3


def test_budget_shows_spent_and_remaining(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        "lake: {root: lake}\nsources:\n  erp:\n    url: jdbc:postgresql://h/db\n    user: u\n"
        "    password_env: X\n    tables: [{name: t, key: id}]\n",
        encoding="utf-8",
    )
    ledger = BudgetLedger.for_lake(tmp_path / "lake")
    budget = Budget(privacy_unit="customer_id", epsilon=2.0, delta=1e-6)
    ledger.commit(
        ledger.reserve(
            "orders", budget, [LaplaceMechanism(epsilon=0.5)], kind="release", description="counts"
        )
    )
    result = runner.invoke(app, ["privacy", "budget", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert (row["dataset"], row["spent_epsilon"], row["remaining_epsilon"]) == ("orders", 0.5, 1.5)
