"""Table maintenance on the batch zones: deletes folded into data files, old snapshots expired,
the rows unchanged, and the next incremental run still reading from its watermark."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from pipelines.cli import app as cli
from pipelines.config import LakeConfig, load_config
from pipelines.lake import Lake
from pipelines.local_postgres import PostgresInfo
from pipelines.maintenance import TableFiles, TableMaintenance, state_snapshot
from pipelines.spark_job import LEVEL_PROPERTY, run_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

RAW, CLEAN, CURATED = "raw.maint_mnt_items", "clean.mnt_items", "curated.mnt_items"
RUN_COLUMNS = {"_run_id", "_ingested_at"}


def _config(tmp: Path, postgres: PostgresInfo, lake: LakeConfig) -> Path:
    password = tmp / "password"
    password.write_text(postgres.password, encoding="utf-8")
    config = {
        "lake": {"root": str(lake.root)},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "sources": {
            "maint": {
                "url": postgres.jdbc_url,
                "user": postgres.user,
                "password_file": str(password),
                "schema": "maintsrc",
                "num_partitions": 2,
                "tables": [
                    {"name": "items", "key": "id", "watermark": "updated_at", "entity": "mnt_items"}
                ],
            }
        },
        "transform": {"rule_packs": ["common"]},
    }
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _sql(postgres: PostgresInfo, statement: str) -> None:
    with psycopg.connect(postgres.dsn()) as db:
        db.execute(statement)


def _rows(lake: Lake, table: str) -> list[dict[str, Any]]:
    rows = [
        {k: v for k, v in row.items() if k not in RUN_COLUMNS}
        for row in lake.read(table).to_pylist()
    ]
    return sorted(rows, key=lambda r: (r["_source_key"], str(r.get("_content_hash"))))


def _touch(postgres: PostgresInfo, ids: range, hours: int) -> None:
    _sql(
        postgres,
        f"UPDATE maintsrc.items SET title = 'v{hours} ' || id,"
        f" updated_at = now() + interval '{hours} hours'"
        f" WHERE id BETWEEN {ids.start} AND {ids.stop - 1}",
    )


def test_maintenance_folds_deletes_expires_snapshots_and_keeps_the_watermark(
    spark: SparkSession, postgres: PostgresInfo, lake_config: LakeConfig, tmp_path: Path
) -> None:
    _sql(
        postgres,
        "DROP SCHEMA IF EXISTS maintsrc CASCADE; CREATE SCHEMA maintsrc;"
        " CREATE TABLE maintsrc.items (id int PRIMARY KEY, title text, updated_at timestamptz);"
        " INSERT INTO maintsrc.items SELECT i, 'item ' || i, now()"
        " FROM generate_series(1, 2000) i;",
    )
    config_path = _config(tmp_path, postgres, lake_config)
    config = load_config(config_path)
    lake = Lake(lake_config)
    run_batch(spark, config, "test")
    _touch(postgres, range(1, 41), hours=1)  # 2%: merge-on-read writes delete files
    run_batch(spark, config, "test")

    before = {name: TableFiles.of(lake.table(name)) for name in (RAW, CLEAN, CURATED)}
    assert before[CLEAN].delete_files > 0 and before[CURATED].delete_files > 0
    assert before[CLEAN].snapshots >= 2
    rows = {name: _rows(lake, name) for name in (RAW, CLEAN, CURATED)}
    watermark = state_snapshot(lake.table(RAW))
    assert watermark is not None

    started_ms = time.time() * 1000
    reports = TableMaintenance(spark, lake, older_than=timedelta(0), retain_last=1).run(config)

    by_table = {r.table: r for r in reports}
    assert set(by_table) == {RAW, CLEAN, CURATED}
    for name in (CLEAN, CURATED):
        assert by_table[name].after.delete_files == 0
        # Every snapshot from before maintenance started is gone; its own rewrites remain.
        kept = lake.table(name).metadata.snapshots
        assert kept and all(s.timestamp_ms >= started_ms for s in kept)
    # The rows a reader sees are the same, row for row.
    assert {name: _rows(lake, name) for name in rows} == rows
    # Raw keeps the snapshot whose summary holds the watermark, and only what came after it.
    assert by_table[RAW].kept_for_state == watermark.snapshot_id
    assert lake.table(RAW).snapshot_by_id(watermark.snapshot_id) is not None
    # Curated is still marked level with (the rewritten) clean: the next run takes the short way.
    level = lake.table(CURATED).properties[LEVEL_PROPERTY]
    assert level == f"{by_table[CLEAN].after.snapshot_id}:{by_table[CURATED].after.snapshot_id}"

    # The next incremental run reads only what changed since the watermark.
    _touch(postgres, range(100, 110), hours=2)
    _, reports_after = run_batch(spark, config, "test")
    assert [r.rows_read for r in reports_after] == [10]
    curated = {r["_source_key"]: r for r in lake.read(CURATED).to_pylist()}
    assert len(curated) == 2000
    assert curated["105"]["title"] == "v2 105" and curated["5"]["title"] == "v1 5"

    # The command: the same maintenance, its figures as JSON (in-process: the running session).
    result = CliRunner().invoke(
        cli,
        ["lake", "maintain", "-c", str(config_path), "--older-than-days", "0", "--json"],
    )
    assert result.exit_code == 0, result.output
    printed = {r["table"]: r for r in json.loads(result.stdout)}
    assert set(printed) == {RAW, CLEAN, CURATED}
    assert printed[CURATED]["after"]["delete_files"] == 0
    assert printed[RAW]["kept_for_state"] == state_snapshot(lake.table(RAW)).snapshot_id
