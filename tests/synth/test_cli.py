"""``steward synth generate`` through the CLI, with the session's model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.commands.synth import synth_app
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from synth.demo.support_tickets import DEMO_CONFIG_YAML
from synth.embed import MiniLMEncoder

runner = CliRunner()


def test_generate_command_reports_and_records_the_run(
    lake: Lake, encoder: MiniLMEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same real model, already loaded by the session fixture, instead of a second copy.
    monkeypatch.setattr("synth.embed.MiniLMEncoder", lambda: encoder)
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        f"lake: {{root: {lake.config.root}}}\n"
        + DEMO_CONFIG_YAML.replace("per_label: 40", "per_label: 3"),
        encoding="utf-8",
    )
    result = runner.invoke(synth_app, ["generate", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["task"] == "rare_support_intents" and report["generated"] > 0
    assert report["backend"]["drafts"]["drafted"] >= report["generated"]
    runs = RunLedger(lake.config.ledger).list_runs()
    assert runs[0]["kind"] == "synth" and runs[0]["status"] == "succeeded"

    text = runner.invoke(synth_app, ["generate", "-c", str(config)])
    assert text.exit_code == 0 and "queue:" in text.output

    unknown = runner.invoke(synth_app, ["generate", "-c", str(config), "--task", "nope"])
    assert unknown.exit_code == 3 and "no synth task 'nope'" in unknown.output
