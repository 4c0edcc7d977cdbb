"""``steward kb load`` and ``steward kb search`` end to end on a lake written by pyiceberg."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.errors import ExitCode

runner = CliRunner()

CONFIG = """\
lake:
  root: {root}
sources: {{}}   # other sections are ignored by kb commands
kb:
  collection: clinic
  embedding: {{device: cpu}}
  chunking: {{max_tokens: 64, overlap_tokens: 8}}
  store: {{kind: {kind}{path}}}
  access:
    tags: [department, tenant]
    principals:
      cardiologist: {{department: [cardiology], tenant: [acme]}}
      auditor: {{department: "*", tenant: "*"}}
  datasets:
    medical_orders:
      fields: [prescription, notes]
      access: {{department: department, tenant: tenant}}
"""


def write_config(tmp_path: Path, lake_root: Path, kind: str = "edge") -> Path:
    path = tmp_path / "pipeline.yaml"
    extra = ", path: qdrant" if kind == "qdrant" else ""
    path.write_text(CONFIG.format(root=lake_root, kind=kind, path=extra), encoding="utf-8")
    return path


def test_load_then_search_as_json(tmp_path: Path, curated_lake: Any) -> None:
    config = write_config(tmp_path, curated_lake.root)
    result = runner.invoke(app, ["kb", "load", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    [report] = json.loads(result.stdout)
    assert report["dataset"] == "medical_orders" and report["upserted"] == 11
    assert (curated_lake.root / "kb" / "clinic" / "edge_config.json").exists()

    again = runner.invoke(app, ["kb", "load", "-c", str(config), "--json"])
    assert json.loads(again.stdout)[0]["embedded"] == 0

    result = runner.invoke(
        app,
        ["kb", "search", "Metoprolol 25 mg po bid", "--principal", "cardiologist",
         "--k", "3", "--filter", "field=prescription", "-c", str(config), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert hits[0]["text"] == "Metoprolol 25 mg po bid"
    assert hits[0]["metadata"]["_source_key"] == "2"
    assert {h["metadata"]["access"]["department"] for h in hits} == {"cardiology"}
    assert {h["metadata"]["field"] for h in hits} == {"prescription"}


def test_search_refuses_unknown_principal_and_bad_filter(tmp_path: Path, curated_lake: Any) -> None:
    config = write_config(tmp_path, curated_lake.root, kind="qdrant")
    result = runner.invoke(app, ["kb", "search", "x", "-p", "mallory", "-c", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    assert "unknown principal 'mallory'" in " ".join(result.stderr.split())
    result = runner.invoke(
        app, ["kb", "search", "x", "-p", "auditor", "-f", "nokey", "-c", str(config)]
    )
    assert result.exit_code == 2
    result = runner.invoke(app, ["kb", "search", "x", "-p", "auditor", "-c", str(config)])
    assert result.exit_code == ExitCode.LAKE
    assert "run `steward kb load` first" in " ".join(result.stderr.split())


def test_a_config_without_kb_section_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text("lake: {root: lake}\n", encoding="utf-8")
    result = runner.invoke(app, ["kb", "load", "-c", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    assert "no kb section" in " ".join(result.stderr.split())


def test_the_cli_imports_no_heavy_engine() -> None:
    code = (
        "import sys, pipelines.cli; "
        "heavy = {'torch', 'sentence_transformers', 'qdrant_client', 'qdrant_edge'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_runs_lineage_traces_a_knowledge_base_point(tmp_path: Path, curated_lake: Any) -> None:
    config = write_config(tmp_path, curated_lake.root)
    assert runner.invoke(app, ["kb", "load", "-c", str(config)]).exit_code == 0
    found = runner.invoke(
        app,
        ["kb", "search", "顺铂 75mg/m² 静脉滴注", "--principal", "auditor", "--k", "1",
         "-c", str(config), "--json"],
    )  # fmt: skip
    [hit] = json.loads(found.stdout)

    result = runner.invoke(app, ["runs", "lineage", hit["id"], "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    point = json.loads(result.stdout)
    assert (point["dataset"], point["field"], point["chunk_index"]) == (
        "medical_orders",
        "prescription",
        0,
    )
    assert point["access"] == {"department": "oncology", "tenant": "acme"}
    assert point["lineage"]["_source_key"] == "3" and point["lineage"]["_run_id"] == "run-1"
    [row] = point["rows"]
    assert (row["source"], row["entity"], row["source_key"]) == ("erp", "medical_orders", "3")
    assert row["rules_version"] == "rules-v1"

    text = runner.invoke(app, ["runs", "lineage", hit["id"], "-c", str(config)])
    assert "knowledge-base point" in text.stdout and "curated.medical_orders" in text.stdout

    missing = runner.invoke(
        app, ["runs", "lineage", "00000000-0000-5000-8000-000000000000", "-c", str(config)]
    )
    assert missing.exit_code == ExitCode.LAKE
    assert "no knowledge-base point" in missing.output
