"""A batch-level check failing on the stream's output, through ``steward run stream --once``:
recorded, exit 6, the rows stay in the lake, and the knowledge base receives nothing until the
contract is fixed; then the next run checks the same checkpoint first and loads it."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.embed import SentenceTransformerEmbedder
from pipelines.cli import app
from pipelines.config import load_config
from pipelines.errors import ExitCode
from pipelines.flink_job import run_stream
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from pipelines.transform import build_chain

pytestmark = pytest.mark.flink

runner = CliRunner()

CONTRACT = """
entity: app_logs
version: 1
description: Application log events, one row per event read.
key: _source_key
columns:
  - {name: _source_key, type: string, required: true, description: Where the event was read.}
  - {name: event_time, type: timestamp, required: true, description: When it happened (UTC).}
  - {name: level, type: string, description: Log level.}
  - {name: message, type: string, description: The event text after cleaning.}
"""
LEVEL_ALWAYS_SET = """expectations:
  - name: app_logs.level.always_set
    expect: expect_column_proportion_of_non_null_values_to_be_between
    column: level
    kwargs: {min_value: 1.0}
    notes: Every event has a level; events without one come from a misconfigured shipper.
"""
PIPELINE = """
lake: {root: lake}
transform: {rule_packs: [logs]}
quality: {contracts_dir: contracts, data_docs: false}
kb:
  collection: logs
  embedding: {device: cpu}
  access: {tags: [], principals: {ops: {}}}
  datasets:
    app_logs: {table: clean.app_logs, fields: [message]}
stream:
  sources:
    shipper:
      kind: landing
      path: landing
      settle_s: 0
      files: [{glob: "*.jsonl", format: json, entity: app_logs}]
  checkpoint_interval_ms: 1000
  poll_interval_ms: 200
  once_idle_timeout_s: 10
"""
EVENTS = [
    {"time": "2024-03-05T10:00:00Z", "level": "INFO", "message": "payment service started"},
    {"time": "2024-03-05T10:00:01Z", "message": "queue depth 12 of 100"},
    {"time": "2024-03-05T10:00:02Z", "level": "WARN", "message": "retrying the ledger export"},
]


def test_a_failing_batch_check_blocks_the_checkpoint_and_keeps_its_rows(
    tmp_path: Path, flink_gateway: None, embedder: SentenceTransformerEmbedder
) -> None:
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "events.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8"
    )
    (tmp_path / "contracts").mkdir()
    contract = tmp_path / "contracts" / "app_logs.yaml"
    contract.write_text(CONTRACT + LEVEL_ALWAYS_SET, encoding="utf-8")
    config = tmp_path / "pipeline.yaml"
    config.write_text(PIPELINE, encoding="utf-8")

    result = runner.invoke(app, ["run", "stream", "--once", "-c", str(config)])
    assert result.exit_code == ExitCode.QUALITY, result.output
    message = " ".join(result.stderr.split())
    assert "QualityGateFailed" in message and "app_logs.level.always_set" in message

    pipeline = load_config(config)
    lake = Lake(pipeline.lake)
    assert lake.read("clean.app_logs").num_rows == len(EVENTS)  # nothing lost
    ledger = RunLedger(pipeline.lake.ledger)
    failed = ledger.show_run(ledger.list_runs()[0]["run_id"])
    assert failed is not None and (failed["status"], failed["exit_code"]) == ("failed", 6)
    [checkpoint] = failed["checkpoints"]
    assert checkpoint["quality"].startswith("failed: app_logs failed at gate clean:")
    assert "clean.app_logs" not in ledger.stream_cursors()
    assert pipeline.kb is not None and pipeline.kb.store.path is not None
    assert not pipeline.kb.store.path.exists()  # nothing loaded into the knowledge base

    report = runner.invoke(app, ["quality", "report", "-c", str(config), "--json"])
    assert report.exit_code == 0, report.output
    [gate] = json.loads(report.stdout)
    assert (gate["entity"], gate["gate"], gate["passed"]) == ("app_logs", "clean", False)
    assert [c["name"] for c in gate["checks"] if not c["success"]] == ["app_logs.level.always_set"]

    # The steward drops the expectation: the next run checks the same checkpoint first.
    contract.write_text(CONTRACT, encoding="utf-8")
    pipeline = load_config(config)
    assert pipeline.stream is not None
    again = run_stream(
        pipeline.lake,
        pipeline.stream,
        partial(build_chain, pipeline),
        "test",
        once=True,
        quality=pipeline.quality,
        kb=pipeline.kb,
        embedder=embedder,
    )
    assert [(c.quality, c.rows.get("clean.app_logs")) for c in again.checkpoints] == [
        ("passed", len(EVENTS))
    ]
    assert again.knowledge_base["app_logs"].rows == len(EVENTS)
    assert lake.read("clean.app_logs").num_rows == len(EVENTS)
