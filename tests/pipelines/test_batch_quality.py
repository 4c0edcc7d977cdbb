"""Planted bad batches are stopped at the right gate, and curated keeps its previous state."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from pipelines.config import LakeConfig, PipelineConfig
from pipelines.errors import ExitCode, QualityGateFailed
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from pipelines.local_postgres import PostgresInfo
from pipelines.spark_job import run_batch

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

CONTRACT = """\
entity: parcels
version: 1
description: Parcels handed to the carrier; one row per parcel id.
key: parcel_id
columns:
  - {name: parcel_id, type: integer, required: true, min: 1, description: Parcel id.}
  - {name: note, type: string, pii_free: true, description: Free-text handling note.}
  - {name: carrier, type: string, required: true, description: Carrier code.}
  - {name: weight_kg, type: decimal, min: 0, description: Weight in kilograms.}
  - {name: updated_at, type: timestamp, required: true, description: Last change.}
"""


@pytest.fixture
def parcels(
    postgres: PostgresInfo, lake_config: LakeConfig, tmp_path: Path
) -> tuple[PipelineConfig, Callable[[str], None]]:
    def sql(statement: str) -> None:
        with psycopg.connect(postgres.dsn()) as db:
            db.execute(statement)

    sql(
        "DROP SCHEMA IF EXISTS depot CASCADE; CREATE SCHEMA depot;"
        " CREATE TABLE depot.parcels (parcel_id int, note text, carrier text,"
        " weight_kg numeric(8, 2), updated_at timestamptz);"
        " INSERT INTO depot.parcels SELECT i, '轻放 fragile #' || i, 'SF', i * 0.5, now()"
        " FROM generate_series(1, 40) i;"
    )
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "parcels.yaml").write_text(CONTRACT, encoding="utf-8")
    password = tmp_path / "password"
    password.write_text(postgres.password, encoding="utf-8")
    config = PipelineConfig.model_validate(
        {
            "lake": {"root": str(lake_config.root)},
            "sources": {
                "depot": {
                    "url": postgres.jdbc_url,
                    "user": postgres.user,
                    "password_file": str(password),
                    "schema": "depot",
                    "tables": [{"name": "parcels", "key": "parcel_id", "watermark": "updated_at"}],
                }
            },
            "transform": {"rule_packs": ["common"]},
            "quality": {"contracts_dir": str(contracts)},
        }
    )
    return config, sql


def test_bad_batches_stop_at_their_gate(
    spark: SparkSession, parcels: tuple[PipelineConfig, Callable[[str], None]]
) -> None:
    config, sql = parcels
    lake = Lake(config.lake)
    ledger = RunLedger(config.lake.ledger)
    run_batch(spark, config, "test")
    good = lake.snapshots("curated.parcels")[-1]["snapshot_id"]
    assert lake.read("curated.parcels").num_rows == 40

    # A leaked phone number: the row-level check quarantines that row, the rest goes on.
    sql(
        "UPDATE depot.parcels SET note = '请致电 13800138000', updated_at = now()"
        " WHERE parcel_id = 3"
    )
    _, [report] = run_batch(spark, config, "test")
    assert report.reasons == {"quality/quarantine:quality.parcels.note.no_pii": 1}
    leaked = [r for r in lake.read("quarantine.quality").to_pylist() if r["_source_key"] == "3"]
    assert leaked and "13800138000" not in leaked[0]["_reason"]
    good = lake.snapshots("curated.parcels")[-1]["snapshot_id"]
    curated = {r["parcel_id"]: r["note"] for r in lake.read("curated.parcels").to_pylist()}
    assert curated[3] == "轻放 fragile #3"  # the previous clean version stays

    # A uniqueness break: the batch gate stops the run before clean; curated is untouched.
    sql(
        "INSERT INTO depot.parcels VALUES"
        " (5, 'second parcel 5', 'SF', 1, now()), (5, 'third', 'SF', 1, now())"
    )
    with pytest.raises(QualityGateFailed) as caught:
        run_batch(spark, config, "test")
    assert caught.value.exit_code == ExitCode.QUALITY
    assert "parcels" in caught.value.message and "gate clean" in caught.value.message
    assert lake.snapshots("curated.parcels")[-1]["snapshot_id"] == good
    sql("DELETE FROM depot.parcels WHERE note IN ('second parcel 5', 'third')")

    # A type change at the source whose values all still convert: a warning, nothing
    # rewritten (the converted rows hash as before).
    sql("ALTER TABLE depot.parcels ALTER COLUMN parcel_id TYPE text")
    run_id, [report] = run_batch(spark, config, "test")
    assert report.quarantined == 0
    assert any("parcel_id is string" in w for w in ledger.show_run(run_id)["warnings"])
    assert lake.snapshots("curated.parcels")[-1]["snapshot_id"] == good

    # A type change with a value that does not convert: that row goes to quarantine as read,
    # with the column and both types named; the others go on.
    sql(
        "ALTER TABLE depot.parcels ALTER COLUMN weight_kg TYPE text;"
        " UPDATE depot.parcels SET weight_kg = 'heavy', updated_at = now() WHERE parcel_id = '7';"
        " UPDATE depot.parcels SET weight_kg = '9.25', updated_at = now() WHERE parcel_id = '8';"
    )
    _, [report] = run_batch(spark, config, "test")
    assert report.reasons == {"contract/quarantine:quality.parcels.weight_kg.type": 1}
    [drifted] = [
        r for r in lake.read("quarantine.contract").to_pylist() if r["_entity"] == "parcels"
    ]
    assert drifted["_source_key"] == "7"
    assert drifted["_reason"] == (
        "weight_kg: string at the source, expected decimal; the value does not convert"
    )
    assert json.loads(drifted["record"])["weight_kg"] == "heavy"
    curated = {r["parcel_id"]: r["weight_kg"] for r in lake.read("curated.parcels").to_pylist()}
    assert curated[7] == Decimal("3.50") and curated[8] == Decimal("9.25")
    good = lake.snapshots("curated.parcels")[-1]["snapshot_id"]

    # A required column gone: the schema broke, the rows read go to quarantine whole and
    # the run stops at the gate with curated untouched; once the source is fixed, it goes on.
    sql(
        "ALTER TABLE depot.parcels DROP COLUMN carrier;"
        " UPDATE depot.parcels SET updated_at = now() WHERE parcel_id IN ('1', '2')"
    )
    with pytest.raises(
        QualityGateFailed, match=r"parcels: .*missing at the source: carrier"
    ) as caught:
        run_batch(spark, config, "test")
    assert caught.value.exit_code == ExitCode.QUALITY
    broken = [
        r["_source_key"]
        for r in lake.read("quarantine.contract").to_pylist()
        if r["_rule_id"] == "quality.parcels.schema"
    ]
    assert sorted(broken) == ["1", "2"]
    assert lake.snapshots("curated.parcels")[-1]["snapshot_id"] == good
    assert lake.read("curated.parcels").num_rows == 40
    sql("ALTER TABLE depot.parcels ADD COLUMN carrier text DEFAULT 'SF'")
    _, [report] = run_batch(spark, config, "test")
    assert report.rows_read == 2 and report.kept == 2

    # A new column at the source: clean and curated take it as a nullable column, with a
    # warning in the run ledger; the rows written before read null there.
    sql(
        "ALTER TABLE depot.parcels ADD COLUMN dock text;"
        " UPDATE depot.parcels SET dock = 'B2', updated_at = now() WHERE parcel_id = '9'"
    )
    run_id, [report] = run_batch(spark, config, "test")
    assert report.rows_read == 1 and report.kept == 1
    warnings = ledger.show_run(run_id)["warnings"]
    assert "clean.parcels: new column dock added (nullable)" in warnings
    assert "curated.parcels: new column dock added (nullable)" in warnings
    docks = {r["parcel_id"]: r["dock"] for r in lake.read("curated.parcels").to_pylist()}
    assert docks[9] == "B2" and docks[10] is None and len(docks) == 40
