"""A batch job killed with SIGKILL during its writes, then re-run, leaves exactly the tables of
an uninterrupted run (the watermark commits with raw, after clean; every write is a MERGE)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import yaml

from pipelines.config import LakeConfig, load_config
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from pipelines.local_postgres import PostgresInfo
from pipelines.spark_job import run_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

# Run-specific columns: everything else must be identical between the two lakes.
RUN_COLUMNS = {"_source", "_entity", "_run_id", "_ingested_at", "_quarantined_at"}
TABLES = ("items", "notes")


def _config(path: Path, postgres: PostgresInfo, lake: LakeConfig, source: str, prefix: str) -> Path:
    password = path.parent / "password"
    password.write_text(postgres.password, encoding="utf-8")
    tables = [
        {"name": name, "key": "id", "watermark": "updated_at", "entity": f"{prefix}_{name}"}
        for name in TABLES
    ]
    config = {
        "lake": {"root": str(lake.root)},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "sources": {
            source: {
                "url": postgres.jdbc_url,
                "user": postgres.user,
                "password_file": str(password),
                "schema": "killsrc",
                "num_partitions": 2,
                "tables": tables,
            }
        },
        "transform": {"rule_packs": ["common"]},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _sql(postgres: PostgresInfo, statement: str) -> None:
    with psycopg.connect(postgres.dsn()) as db:
        db.execute(statement)


def _ledger_rows(ledger: Path, query: str, run_ids: set[str]) -> list[sqlite3.Row]:
    """Rows of ``query`` for the runs not in ``run_ids`` (the ones started since)."""
    if not ledger.exists():
        return []
    with sqlite3.connect(ledger, timeout=30) as db:
        db.row_factory = sqlite3.Row
        return [r for r in db.execute(query).fetchall() if r["run_id"] not in run_ids]


def _kill_when(config: Path, log: Path, ledger: Path, reached: Callable[[set[str]], bool]) -> None:
    """Start ``steward run batch`` in its own process group and SIGKILL the whole group (the
    Python driver, its JVM and Python workers) as soon as ``reached`` says so."""
    before = {r["run_id"] for r in _ledger_rows(ledger, "SELECT run_id FROM runs", set())}
    with log.open("ab") as out:
        job = subprocess.Popen(
            [Path(sys.executable).parent / "steward", "run", "batch", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not reached(before):
            assert job.poll() is None, f"the run ended before its kill point:\n{log.read_text()}"
            assert time.monotonic() < deadline, "the kill point was never reached"
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()


def _zone_rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    rows = [
        {k: v for k, v in row.items() if k not in RUN_COLUMNS}
        for row in lake.read(table).to_pylist()
    ]
    return sorted(rows, key=lambda r: (r["_source_key"], r["_content_hash"]))


def test_sigkill_during_the_writes_then_rerun_equals_an_uninterrupted_run(
    spark: SparkSession, postgres: PostgresInfo, lake_config: LakeConfig, tmp_path: Path
) -> None:
    _sql(
        postgres,
        "DROP SCHEMA IF EXISTS killsrc CASCADE; CREATE SCHEMA killsrc;"
        " CREATE TABLE killsrc.items (id int PRIMARY KEY, title text, updated_at timestamptz);"
        " INSERT INTO killsrc.items SELECT i, '货品　No.' || i || '  \t', now()"
        " FROM generate_series(1, 3000) i;"
        " CREATE TABLE killsrc.notes (id int PRIMARY KEY, body text, updated_at timestamptz);"
        " INSERT INTO killsrc.notes SELECT i, 'note ' || i, now()"
        " FROM generate_series(1, 2000) i;",
    )
    lake = Lake(lake_config)
    ledger = lake_config.ledger
    log = tmp_path / "killed.log"

    # The reference: one uninterrupted run of the same source into entities ref_*.
    reference = load_config(_config(tmp_path / "ref.yaml", postgres, lake_config, "ref", "ref"))
    run_batch(spark, reference, "test")

    killed = _config(tmp_path / "killed.yaml", postgres, lake_config, "kil", "kil")
    # Kill 1: right after clean.kil_items committed, before raw moves the watermark.
    _kill_when(
        killed,
        log,
        ledger,
        lambda before: any(
            r["table_name"].endswith("clean.kil_items")
            for r in _ledger_rows(ledger, "SELECT run_id, table_name FROM commits", before)
        ),
    )
    tables = set(lake.tables())
    assert "clean.kil_items" in tables and "raw.kil_kil_items" not in tables
    # Kill 2 (the next run resumes the same window): once the second table's chain is
    # counted, as the writes of both tables start.
    _kill_when(
        killed,
        log,
        ledger,
        lambda before: any(
            r["entity"] == "kil_notes" and r["stage"] == "quality"
            for r in _ledger_rows(ledger, "SELECT run_id, entity, stage FROM stage_counts", before)
        ),
    )
    # The two killed runs stay "running" in the ledger: a crash writes nothing, not even that.
    states = {r["status"] for r in RunLedger(ledger).list_runs(limit=50)}
    assert "running" in states

    run_id, reports = run_batch(spark, load_config(killed), "test")
    # Each table resumes its own window: read again whole (its watermark had not moved when
    # the run died) or not at all (its raw commit made it). Entities run side by side, so
    # which of the two depends on how far each got before the kill.
    read = {r.entity: r.rows_read for r in reports}
    assert read["kil_items"] in (0, 3000) and read["kil_notes"] in (0, 2000)
    assert RunLedger(ledger).show_run(run_id)["status"] == "succeeded"

    for zone in ("clean", "curated"):
        for name in TABLES:
            got = _zone_rows(lake, f"{zone}.kil_{name}")
            want = _zone_rows(lake, f"{zone}.ref_{name}")
            assert len(got) == len(want) == (3000 if name == "items" else 2000)
            assert got == want, f"{zone}.{name} differs from the uninterrupted run"
    for name in TABLES:
        assert _zone_rows(lake, f"raw.kil_kil_{name}") == _zone_rows(lake, f"raw.ref_ref_{name}")
    # And the source is not re-read once the interrupted window is done.
    _, reports = run_batch(spark, load_config(killed), "test")
    assert {r.entity: r.rows_read for r in reports} == {"kil_items": 0, "kil_notes": 0}
