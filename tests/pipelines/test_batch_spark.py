"""The demo batch path end to end: real PostgreSQL, real Spark, a real Iceberg catalog."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pyarrow as pa
import pytest

from pipelines import spark_job
from pipelines.config import LakeConfig, PipelineConfig, load_config
from pipelines.demo import PSEUDONYM_KEY_ENV, write_demo_config
from pipelines.demo_erp import DEMO_TABLES, load_demo_erp
from pipelines.errors import ConfigError, ExitCode, LakeError, SourceError
from pipelines.lake import LINEAGE_COLUMNS, Lake
from pipelines.ledger import RunLedger
from pipelines.local_postgres import PostgresInfo
from pipelines.quality import QualityReports
from pipelines.spark_job import (
    CLEAN_AT_PROPERTY,
    LEVEL_PROPERTY,
    EntityReport,
    Level,
    SparkBatchJob,
    run_batch,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


@dataclass
class DemoRun:
    config: PipelineConfig
    config_path: Path
    run_id: str
    reports: dict[str, EntityReport]
    erp_rows: dict[str, int]


def demo_config(tmp: Path, postgres: PostgresInfo, lake: LakeConfig) -> Path:
    password_file = tmp / "erp-password"
    password_file.write_text(postgres.password, encoding="utf-8")
    return write_demo_config(
        tmp / "pipeline.yaml",
        port=postgres.port,
        password_file=password_file,
        lake_root=lake.root,
    )


@pytest.fixture(scope="module")
def demo_run(
    spark: SparkSession,
    postgres: PostgresInfo,
    lake_config: LakeConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> DemoRun:
    # The demo policies pseudonymise with a key from the environment.
    os.environ.setdefault(PSEUDONYM_KEY_ENV, secrets.token_hex(32))
    erp_rows = load_demo_erp(postgres, scale=1)
    path = demo_config(tmp_path_factory.mktemp("demo"), postgres, lake_config)
    config = load_config(path)
    run_id, reports = run_batch(spark, config, "test")
    return DemoRun(config, path, run_id, {r.entity: r for r in reports}, erp_rows)


def test_curated_equals_erp_minus_quarantined(demo_run: DemoRun, postgres: PostgresInfo) -> None:
    lake = Lake(demo_run.config.lake)
    for table in DEMO_TABLES:
        report = demo_run.reports[table.name]
        assert report.rows_read == demo_run.erp_rows[table.name]
        curated = lake.read(f"curated.{table.name}")
        assert curated.num_rows == report.kept - report.deleted
        assert curated.num_rows == report.curated_rows
        keys = curated["_source_key"].to_pylist()
        assert len(set(keys)) == len(keys)
    # The demo ERP plants spoiled prescriptions: the blank and the mis-decoded ones are in
    # quarantine with their rule and reason (control characters are cleaned, not rejected).
    with psycopg.connect(postgres.dsn()) as db:
        planted = {
            str(key)
            for (key,) in db.execute(
                "SELECT med_order_id FROM erp.medical_orders"
                " WHERE btrim(prescription, E' \\t') = '' OR prescription LIKE '%é˜¿%'"  # noqa: RUF001
            )
        }
    assert len(planted) >= 4
    quarantine = lake.read("quarantine.cleaning").to_pylist()
    spoiled = {r["_source_key"]: r for r in quarantine if r["_entity"] == "medical_orders"}
    assert planted <= set(spoiled)
    assert len(spoiled) == demo_run.reports["medical_orders"].quarantined
    assert all(r["_rule_id"] and r["_reason"] and r["record"] for r in spoiled.values())


def test_lineage_columns_filled(demo_run: DemoRun) -> None:
    lake = Lake(demo_run.config.lake)
    curated = lake.read("curated.medical_orders")
    for column in (*LINEAGE_COLUMNS, "_rules_version"):
        assert curated[column].null_count == 0, column
    row = curated.slice(0, 1).to_pylist()[0]
    assert row["_source"] == "erp" and row["_entity"] == "medical_orders"
    assert row["_run_id"] == demo_run.run_id
    assert len(row["_content_hash"]) == 64


def test_rules_were_applied(demo_run: DemoRun) -> None:
    prescriptions = Lake(demo_run.config.lake).read("curated.medical_orders")["prescription"]
    text = " ".join(p for p in prescriptions.to_pylist() if p)
    assert "每日两次" in text
    assert " bid" not in text.lower().replace("bidding", "")


def utc_values(column: pa.ChunkedArray) -> list[object]:
    """Python values; timestamps as naive UTC (Spark's session time zone is UTC)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us"))
    return column.to_pylist()


def test_spark_and_pyiceberg_read_the_same_rows(demo_run: DemoRun, spark: SparkSession) -> None:
    lake = Lake(demo_run.config.lake)
    for table in ("curated.orders", "curated.medical_orders", "raw.erp_invoices"):
        from_python = lake.read(table).sort_by("_source_key")
        frame = spark.table(f"steward.{table}").orderBy("_source_key").toPandas()
        from_spark = pa.Table.from_pandas(frame, preserve_index=False)
        assert from_spark.column_names == from_python.column_names
        assert from_spark.num_rows == from_python.num_rows > 0
        for name in from_python.column_names:
            assert utc_values(from_python[name]) == utc_values(from_spark[name]), f"{table}.{name}"


def test_ledger_balances_and_snapshots_carry_the_run(demo_run: DemoRun) -> None:
    run = RunLedger(demo_run.config.lake.ledger).show_run(demo_run.run_id)
    assert run is not None and run["status"] == "succeeded"
    for table in DEMO_TABLES:
        stages = [s for s in run["stages"] if s["entity"] == table.name]
        assert [s["stage"] for s in stages] == ["contract", "cleaning", "privacy", "quality"]
        assert stages[0]["rows_in"] == demo_run.erp_rows[table.name]
        for before, after in itertools.pairwise(stages):
            assert after["rows_in"] == before["rows_out"]
        assert stages[-1]["rows_out"] == demo_run.reports[table.name].kept
        for stage in stages:
            assert stage["rows_in"] == stage["rows_out"] + stage["quarantined"] + stage["dropped"]
    committed = {c["table_name"] for c in run["commits"]}
    assert "steward.curated.medical_orders" in committed
    snapshots = Lake(demo_run.config.lake).snapshots("raw.erp_orders")
    assert snapshots[-1]["summary"]["steward.run-id"] == demo_run.run_id
    # Raw's rows share one ingest day; every read partition (num_partitions) wrote its own
    # file rather than one task writing them all.
    partitions = demo_run.config.sources["erp"].num_partitions
    [append] = [s for s in snapshots if s["summary"].get("steward.run-id") == demo_run.run_id]
    assert int(append["summary"]["added-data-files"]) == partitions > 1


def test_rerun_with_same_inputs_adds_nothing(demo_run: DemoRun, spark: SparkSession) -> None:
    lake = Lake(demo_run.config.lake)
    before = {t.name: lake.snapshots(f"curated.{t.name}")[-1]["snapshot_id"] for t in DEMO_TABLES}
    raw_before = lake.read("raw.erp_orders").num_rows
    run_id, reports = run_batch(spark, demo_run.config, "test")
    assert run_id != demo_run.run_id
    for report in reports:
        assert report.raw_new_versions == 0
        curated = lake.read(f"curated.{report.entity}")
        assert curated.num_rows == demo_run.reports[report.entity].curated_rows
    assert lake.read("raw.erp_orders").num_rows == raw_before
    # The session's lake is shared with other modules' sources: count the ERP's rows only.
    quarantined = sum(
        sum(1 for source in lake.read(t)["_source"].to_pylist() if source == "erp")
        for t in lake.tables()
        if t.startswith("quarantine.")
    )
    assert quarantined == sum(r.quarantined for r in demo_run.reports.values())
    after = {t.name: lake.snapshots(f"curated.{t.name}")[-1]["snapshot_id"] for t in DEMO_TABLES}
    # Nothing changed at the source: no commit at all, so no data file was rewritten.
    assert after == before
    # Incremental: the second run read only rows past each table's watermark.
    assert all(report.rows_read == 0 for report in reports)


def test_no_pii_of_redacted_types_left_in_curated(demo_run: DemoRun) -> None:
    from privacy.detect import Detector

    detector = Detector(types=["CN_MOBILE", "CN_RESIDENT_ID", "EMAIL", "BANK_CARD"])
    lake = Lake(demo_run.config.lake)
    scanned = 0
    for table in DEMO_TABLES:
        data = lake.read(f"curated.{table.name}")
        for column in data.column_names:
            kind = data[column].type
            if column.startswith("_") or not (
                pa.types.is_string(kind) or pa.types.is_large_string(kind)
            ):
                continue
            for value in data[column].to_pylist():
                if value:
                    scanned += 1
                    assert detector.scan(value) == [], f"{table.name}.{column}"
    assert scanned > 1000
    # The raw zone keeps the source as it was: the detector does find PII there.
    raw_notes = lake.read("raw.erp_orders")["note"].to_pylist()
    assert any(detector.scan(note) for note in raw_notes if note)
    customers = lake.read("curated.customers").to_pylist()
    assert all(c["mobile"].startswith("tok_") for c in customers if c["mobile"])
    assert all(c["_privacy_policy_version"] for c in customers)


def curated_by_key(lake: Lake, entity: str) -> dict[str, dict[str, object]]:
    return {
        row["_source_key"]: {k: v for k, v in row.items() if k not in ("_run_id", "_ingested_at")}
        for row in lake.read(f"curated.{entity}").to_pylist()
    }


def test_incremental_run_changes_exactly_the_changed_rows(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo
) -> None:
    lake = Lake(demo_run.config.lake)
    orders_before = curated_by_key(lake, "orders")
    customers_before = curated_by_key(lake, "customers")
    with psycopg.connect(postgres.dsn()) as db:
        db.execute(
            "UPDATE erp.orders SET note = coalesce(note, '') || ' 已加急', updated_at = now()"
            " WHERE order_id % 100 = 0"
        )
        db.execute(
            "UPDATE erp.customers SET deleted = true, updated_at = now()"
            " WHERE customer_id IN (SELECT customer_id FROM erp.customers"
            " WHERE NOT deleted ORDER BY customer_id LIMIT 3)"
        )
        changed_orders = {
            str(k)
            for (k,) in db.execute("SELECT order_id FROM erp.orders WHERE order_id % 100 = 0")
        }
        deleted_customers = {
            str(k)
            for (k,) in db.execute(
                "SELECT customer_id FROM erp.customers"
                " WHERE deleted AND updated_at > now() - interval '1 hour'"
            )
        }
    _, reports = run_batch(spark, demo_run.config, "test")
    by_entity = {r.entity: r for r in reports}
    assert by_entity["orders"].rows_read == len(changed_orders) == 20
    assert by_entity["orders"].raw_new_versions == 20
    assert by_entity["customers"].deleted == 3
    assert by_entity["invoices"].rows_read == 0

    orders_after = curated_by_key(lake, "orders")
    assert orders_after.keys() == orders_before.keys()
    differing = {k for k in orders_after if orders_after[k] != orders_before[k]}
    assert differing == changed_orders
    assert all(orders_after[k]["note"].endswith("已加急") for k in changed_orders)

    customers_after = curated_by_key(lake, "customers")
    assert set(customers_before) - set(customers_after) == deleted_customers
    assert all(customers_after[k] == customers_before[k] for k in customers_after)
    deletes = lake.read("raw._deletes").to_pylist()
    assert {d["_source_key"] for d in deletes if d["_entity"] == "customers"} >= deleted_customers


def test_an_incremental_read_larger_than_a_small_one_is_read_again_in_parallel(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incremental read is one query whose rows the driver holds, unless it has more
    than ``_FEW_ROWS`` rows: then the same rows are read in parallel ranges and take the
    large read's path (checkpoints, the chain in Spark's Python workers)."""
    from ingest.erp import JdbcReader

    lake = Lake(demo_run.config.lake)
    run_batch(spark, demo_run.config, "test")  # level with the source, whatever ran before
    monkeypatch.setattr(spark_job, "_FEW_ROWS", 5)
    reads: list[tuple[str, bool]] = []
    read = JdbcReader.read

    def recording_read(self: JdbcReader, table: object, *, parallel: bool = True) -> object:
        reads.append((table.name, parallel))  # type: ignore[attr-defined]
        return read(self, table, parallel=parallel)  # type: ignore[arg-type]

    monkeypatch.setattr(JdbcReader, "read", recording_read)
    before = curated_by_key(lake, "orders")
    with psycopg.connect(postgres.dsn()) as db:
        changed = {
            str(k)
            for (k,) in db.execute(
                "UPDATE erp.orders SET note = coalesce(note, '') || ' 改期', updated_at = now()"
                " WHERE order_id % 50 = 7 RETURNING order_id"
            )
        }
        small = {
            str(k)
            for (k,) in db.execute(
                "UPDATE erp.invoices SET updated_at = now()"
                " WHERE invoice_id IN (2, 4) RETURNING invoice_id"
            )
        }
    assert len(changed) > 5 >= len(small)
    _, reports = run_batch(spark, demo_run.config, "test")
    by_entity = {r.entity: r for r in reports}
    assert by_entity["orders"].rows_read == by_entity["orders"].raw_new_versions == len(changed)
    assert by_entity["invoices"].rows_read == len(small)
    # Every incremental read is first one query; only the large one is read again, in ranges.
    assert [parallel for name, parallel in reads if name == "orders"] == [False, True]
    assert [parallel for name, parallel in reads if name == "invoices"] == [False]
    after = curated_by_key(lake, "orders")
    assert after.keys() == before.keys()
    assert {k for k in after if after[k] != before[k]} == changed
    assert all(after[k]["note"].endswith("改期") for k in changed)


@pytest.mark.parametrize("key_type", ["int", "string"])
def test_figures_counted_from_collected_rows_equal_sparks_aggregate(
    spark: SparkSession, key_type: str
) -> None:
    """A small read's figures (rows, newest watermark and key, rows per rule) are counted
    from its collected rows; they must be what Spark's aggregate says, ties, nulls and the
    key's ordering (9 before 10 as numbers, after it as text) included."""
    from pyspark.sql import functions as F

    rows = [
        (9, "2026-11-27 10:00:00", "cast.a"),
        (10, "2026-11-27 10:00:00", None),
        (3, "2026-11-27 10:00:00.5", "cast.a"),
        (7, "2026-11-27 10:00:00.5", "cast.b"),
        (None, "2026-11-27 10:00:00.5", None),
        (11, None, "cast.b"),
        (12, None, "cast.a"),
    ]
    frame = spark.createDataFrame(rows, "id int, at string, rule string").select(
        F.col("id").cast(key_type).alias("id"), F.col("at").cast("timestamp").alias("at"), "rule"
    )
    values = ("rule", ["cast.a", "cast.b", "cast.c"])
    cases = {
        "all rows": frame,
        "no watermark values": frame.where(F.col("at").isNull()),
        "no rows": frame.limit(0),
        "newest without a key": frame.where(F.col("id").isNull() | F.col("at").isNull()),
    }
    for case, rows_of in cases.items():
        for watermark in ("at", None):
            read = spark_job.EntityRead("s", "e", "id", rows_of, watermark=watermark)
            by_spark = SparkBatchJob._count(rows_of, read, values)
            collected = SparkBatchJob._count(rows_of, read, values, collect=True)
            assert collected[:3] == by_spark[:3], (case, watermark)
            assert by_spark[3] is None
            assert collected[3] is not None and collected[3].num_rows == by_spark[0]
            assert collected[3].column_names == rows_of.columns
    read = spark_job.EntityRead("s", "e", "id", frame, watermark="at")
    newest = SparkBatchJob._count(frame, read, values, collect=True)[1]
    assert newest is not None
    assert (newest.value, newest.key) == ("2026-11-27 10:00:00.5", "7")


def test_full_run_removes_hard_deleted_keys(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every read counts as large here: chains one after another, tallies and gate rows from
    # Spark jobs rather than one collection (the path of a full load at scale).
    monkeypatch.setattr(spark_job, "_FEW_ROWS", 0)
    lake = Lake(demo_run.config.lake)
    with psycopg.connect(postgres.dsn()) as db:
        gone = {
            str(k)
            for (k,) in db.execute(
                "DELETE FROM erp.invoices WHERE invoice_id IN (3, 5) RETURNING invoice_id"
            )
        }
    before = curated_by_key(lake, "invoices")
    run_batch(spark, demo_run.config, "test")
    assert curated_by_key(lake, "invoices") == before  # an incremental read cannot see deletes
    _, reports = run_batch(spark, demo_run.config, "test", full=True)
    assert {r.entity: r.deleted for r in reports}["invoices"] == 2
    after = curated_by_key(lake, "invoices")
    assert set(before) - set(after) == gone
    assert all(after[k] == before[k] for k in after)


def test_an_incremental_run_reads_its_tables_in_the_publish_threads(
    demo_run: DemoRun, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reads past a watermark are expected to be small: each entity is read, cleaned and
    # written in its own thread, so no entity's writes wait for the others' reads.
    threads: dict[str, str] = {}
    ingest = SparkBatchJob._ingest

    def recording_ingest(self: SparkBatchJob, read: spark_job.EntityRead) -> object:
        threads[read.entity] = threading.current_thread().name
        return ingest(self, read)

    monkeypatch.setattr(SparkBatchJob, "_ingest", recording_ingest)
    run_batch(spark, demo_run.config, "test")
    assert set(threads) == {table.name for table in DEMO_TABLES}
    assert all(name.startswith("steward-publish") for name in threads.values()), threads


def test_a_run_releases_the_rows_it_pinned(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Large reads (the full load's path) pin their rows with checkpoints. Holding the frames
    # here keeps them reachable, so only the job itself can have dropped their blocks.
    monkeypatch.setattr(spark_job, "_FEW_ROWS", 0)
    pinned: list[tuple[str, int]] = []
    pin = SparkBatchJob._pin

    def recording_pin(self: SparkBatchJob, frame: object, entity: str) -> object:
        checkpoint = pin(self, frame, entity)  # type: ignore[arg-type]
        pinned.append((entity, checkpoint._jdf.queryExecution().analyzed().rdd().id()))
        return checkpoint

    monkeypatch.setattr(SparkBatchJob, "_pin", recording_pin)
    with psycopg.connect(postgres.dsn()) as db:
        db.execute("UPDATE erp.invoices SET updated_at = now() WHERE invoice_id % 50 = 1")
    run_batch(spark, demo_run.config, "test")
    assert {entity for entity, _ in pinned} == {"invoices"}
    persistent = spark.sparkContext._jsc.getPersistentRDDs()
    assert [rdd for _, rdd in pinned if persistent.containsKey(rdd)] == []


@pytest.fixture
def lake_scans(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts, by table, the batch job's whole-table comparisons (``_changed``) and the
    curated gate's group-bys (``_zone_stats``, by entity) while a test runs."""
    calls: Counter[str] = Counter()
    changed, zone_stats = SparkBatchJob._changed, SparkBatchJob._zone_stats

    def counting_changed(self: SparkBatchJob, rows: object, target: str) -> object:
        calls[f"compare {target.split('.', 1)[1]}"] += 1
        return changed(self, rows, target)  # type: ignore[arg-type]

    def counting_zone_stats(self: SparkBatchJob, table: object, entity: str) -> object:
        calls[f"figures {entity}"] += 1
        return zone_stats(self, table, entity)  # type: ignore[arg-type]

    monkeypatch.setattr(SparkBatchJob, "_changed", counting_changed)
    monkeypatch.setattr(SparkBatchJob, "_zone_stats", counting_zone_stats)
    yield calls


def test_incremental_run_scans_no_table_and_its_figures_match_a_count(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo, lake_scans: Counter[str]
) -> None:
    """New, changed and soft-deleted rows past the watermark go in without a comparison
    with clean or raw, and the curated gate's whole-table figures follow from the level
    mark and clean's MERGE commit: they equal a count of the table afterwards."""
    lake = Lake(demo_run.config.lake)
    run_batch(spark, demo_run.config, "test")  # level with the source, whatever ran before
    lake_scans.clear()
    with psycopg.connect(postgres.dsn()) as db:
        db.execute(
            "CREATE TEMP TABLE fresh AS SELECT * FROM erp.orders ORDER BY order_id LIMIT 4;"
            " UPDATE fresh SET order_id = order_id + 1000000, updated_at = now();"
            " INSERT INTO erp.orders SELECT * FROM fresh;"
            " UPDATE erp.orders SET note = coalesce(note, '') || ' 复核', updated_at = now()"
            " WHERE order_id IN (SELECT order_id FROM erp.orders ORDER BY order_id LIMIT 3);"
            " UPDATE erp.customers SET deleted = true, updated_at = now()"
            " WHERE customer_id IN (SELECT customer_id FROM erp.customers"
            " WHERE NOT deleted ORDER BY customer_id DESC LIMIT 2)"
        )
    run_id, reports = run_batch(spark, demo_run.config, "test")
    by_entity = {r.entity: r for r in reports}
    assert by_entity["orders"].rows_read == 7 and by_entity["orders"].raw_new_versions == 7
    # The curated gate checked the rows the clean gate had checked: it took the clean gate's
    # outcomes. Not for customers, where soft deletes took rows out between the two gates.
    gates = {(r.entity, r.gate): r for r in QualityReports(lake.config.root).results(run_id)}
    assert gates["orders", "curated"].outcomes_from == "clean"
    assert gates["orders", "curated"].passed and gates["orders", "curated"].rows_block
    assert gates["customers", "curated"].outcomes_from is None
    assert by_entity["customers"].deleted == 2
    # No comparison with clean, no group-by for the gate: every row read was past the mark.
    assert lake_scans == Counter()
    for entity in ("orders", "customers"):
        clean = lake.table(f"clean.{entity}")
        curated = lake.table(f"curated.{entity}")
        level = Level.parse(curated.properties[LEVEL_PROPERTY])
        assert level is not None
        current = (clean.current_snapshot(), curated.current_snapshot())
        assert level.at(*(s.snapshot_id if s else None for s in current))
        rows = lake.read(f"clean.{entity}")
        assert level.rows == rows.num_rows == by_entity[entity].curated_rows
        assert len(set(rows["_source_key"].to_pylist())) == rows.num_rows
        # Raw's commit records the clean snapshot it followed, for the next run's test.
        raw_commit = lake.snapshots(f"raw.erp_{entity}")[-1]
        assert raw_commit["summary"][CLEAN_AT_PROPERTY] == str(level.clean)


def test_a_stage_quarantines_in_one_merge(
    demo_run: DemoRun, spark: SparkSession, postgres: PostgresInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows two rules of one stage reject go to that stage's quarantine table in one MERGE."""
    lake = Lake(demo_run.config.lake)
    run_batch(spark, demo_run.config, "test")  # level with the source, whatever ran before
    merges: Counter[str] = Counter()
    merge = SparkBatchJob._merge

    def counting_merge(self: SparkBatchJob, name: str, source: object, statement: str) -> None:
        merges[name.split(".", 1)[1]] += 1
        merge(self, name, source, statement)  # type: ignore[arg-type]

    monkeypatch.setattr(SparkBatchJob, "_merge", counting_merge)
    with psycopg.connect(postgres.dsn()) as db:
        keys = [
            str(key)
            for (key,) in db.execute(
                "SELECT med_order_id FROM erp.medical_orders WHERE prescription LIKE '%mg%'"
                " ORDER BY med_order_id LIMIT 4"
            )
        ]
        db.execute(
            "UPDATE erp.medical_orders SET updated_at = now(), prescription = CASE"
            "  WHEN med_order_id = ANY(%(blank)s) THEN ' '"
            "  ELSE 'é˜¿èŽ«è¥¿æž— ' || prescription END"  # noqa: RUF001
            " WHERE med_order_id = ANY(%(all)s)",
            {"blank": [int(k) for k in keys[:2]], "all": [int(k) for k in keys]},
        )
    run_id, reports = run_batch(spark, demo_run.config, "test")
    report = next(r for r in reports if r.entity == "medical_orders")
    assert report.rows_read == 4 and report.quarantined == 4
    assert merges["quarantine.cleaning"] == 1
    quarantined = {
        row["_source_key"]: row["_rule_id"]
        for row in lake.read("quarantine.cleaning").to_pylist()
        if row["_entity"] == "medical_orders" and row["_run_id"] == run_id
    }
    assert set(quarantined) == set(keys)
    assert len(set(quarantined.values())) == 2


# -- failures: nothing half-written ------------------------------------------------------------


@pytest.fixture
def items_source(postgres: PostgresInfo) -> Callable[[str], None]:
    """A small ERP table without a primary key constraint, so a test can plant duplicates."""

    def sql(statement: str) -> None:
        with psycopg.connect(postgres.dsn()) as db:
            db.execute(statement)

    sql(
        "DROP SCHEMA IF EXISTS shop CASCADE; CREATE SCHEMA shop;"
        " CREATE TABLE shop.items (item_id int, note text, updated_at timestamptz);"
        " INSERT INTO shop.items SELECT i, '阿莫西林 0.5g bid #' || i, now()"
        " FROM generate_series(1, 50) i;"
    )
    return sql


def items_config(
    base: PipelineConfig,
    packs: list[str] | None = None,
    name: str = "items",
    lookback: timedelta = timedelta(0),
) -> PipelineConfig:
    erp = base.sources["erp"]
    table = {"name": name, "key": "item_id", "soft_delete_column": None, "lookback": lookback}
    source = erp.model_copy(
        update={"db_schema": "shop", "tables": [erp.tables[0].model_copy(update=table)]}
    )
    transform = base.transform.model_copy(update={"rule_packs": packs or ["common", "medical"]})
    return base.model_copy(update={"sources": {"shop": source}, "transform": transform})


def test_failed_write_leaves_previous_snapshot_and_rerun_duplicates_nothing(
    demo_run: DemoRun, spark: SparkSession, items_source: Callable[[str], None]
) -> None:
    config = items_config(demo_run.config)
    lake = Lake(config.lake)
    run_batch(spark, config, "test")
    good = lake.snapshots("clean.items")[-1]["snapshot_id"]
    assert lake.read("clean.items").num_rows == 50

    # A second version of key 7 in the same batch: the MERGE into clean fails mid-write.
    items_source(
        "UPDATE shop.items SET note = note || ' v2', updated_at = now() WHERE item_id = 7;"
        " INSERT INTO shop.items VALUES (7, 'duplicate key', now());"
    )
    with pytest.raises(LakeError) as caught:
        run_batch(spark, config, "test")
    assert caught.value.exit_code == ExitCode.LAKE
    assert "nothing committed" in caught.value.message
    assert lake.snapshots("clean.items")[-1]["snapshot_id"] == good
    assert lake.read("clean.items").num_rows == 50
    failed = RunLedger(config.lake.ledger).list_runs(1)[0]
    assert failed["status"] == "failed" and failed["exit_code"] == ExitCode.LAKE

    # The source is fixed; the re-run brings clean up to date without duplicates.
    items_source("DELETE FROM shop.items WHERE note = 'duplicate key';")
    run_batch(spark, config, "test")
    clean = lake.read("clean.items")
    assert clean.num_rows == 50
    assert len(set(clean["_source_key"].to_pylist())) == 50
    note_7 = [r["note"] for r in clean.to_pylist() if r["_source_key"] == "7"]
    assert note_7 == ["阿莫西林 0.5g bid #7 v2"]  # no pack names shop items' fields
    # raw keeps every version it saw, once: 50 + the changed key 7. The failed run committed
    # nothing to raw (raw commits after clean), so its watermark did not move either.
    assert lake.read("raw.shop_items").num_rows == 51


def test_unknown_rule_pack_stops_before_anything_is_read(
    demo_run: DemoRun, spark: SparkSession
) -> None:
    config = items_config(demo_run.config, packs=["common", "no_such_pack"])
    runs_before = len(RunLedger(config.lake.ledger).list_runs(1000))
    with pytest.raises(ConfigError, match="no_such_pack"):
        run_batch(spark, config, "test")
    assert len(RunLedger(config.lake.ledger).list_runs(1000)) == runs_before + 1


def test_wrong_password_is_a_terminal_source_error(
    demo_run: DemoRun, spark: SparkSession, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password", encoding="utf-8")
    erp = demo_run.config.sources["erp"]
    config = demo_run.config.model_copy(
        update={"sources": {"erp": erp.model_copy(update={"password_file": wrong})}}
    )
    with pytest.raises(SourceError) as caught:
        run_batch(spark, config, "test")
    assert "source erp" in caught.value.message
    assert "wrong user or password" in caught.value.message
    assert "not-the-password" not in caught.value.message
    assert not caught.value.transient


def test_unreachable_database_is_transient(demo_run: DemoRun, spark: SparkSession) -> None:
    erp = demo_run.config.sources["erp"]
    url = "jdbc:postgresql://127.0.0.1:1/erp"
    config = demo_run.config.model_copy(
        update={"sources": {"erp": erp.model_copy(update={"url": url})}}
    )
    with pytest.raises(SourceError) as caught:
        run_batch(spark, config, "test")
    assert "database unreachable" in caught.value.message
    assert "127.0.0.1:1/erp" in caught.value.message
    assert caught.value.transient


def test_missing_table_names_it(demo_run: DemoRun, spark: SparkSession) -> None:
    erp = demo_run.config.sources["erp"]
    table = erp.tables[0].model_copy(update={"name": "no_such_table"})
    config = demo_run.config.model_copy(
        update={"sources": {"erp": erp.model_copy(update={"tables": [table]})}}
    )
    with pytest.raises(SourceError, match=r"erp\.no_such_table.*missing table"):
        run_batch(spark, config, "test")


def test_arrow_roundtrip_of_curated_is_plain(demo_run: DemoRun) -> None:
    release = Lake(demo_run.config.lake).release("orders")
    import pandas as pd
    import pyarrow.parquet as pq

    table = pq.read_table(release.path / "data")
    assert isinstance(table, pa.Table) and table.num_rows == release.rows
    frame = pd.read_parquet(release.path / "data")
    assert len(frame) == release.rows
    assert set(LINEAGE_COLUMNS) <= set(frame.columns)


def _items_copy(sql: Callable[[str], None], name: str) -> None:
    sql(f"CREATE TABLE shop.{name} AS SELECT * FROM shop.items;")


def test_a_run_that_died_before_raw_compares_every_row_with_clean(
    demo_run: DemoRun,
    spark: SparkSession,
    items_source: Callable[[str], None],
    lake_scans: Counter[str],
) -> None:
    """A run that committed clean and died before raw leaves raw's watermark behind clean.
    The next run re-reads those rows and must compare them with clean (which holds them),
    not take them as new: clean gets no second commit, raw gets the versions once."""
    _items_copy(items_source, "spares")
    config = items_config(demo_run.config, name="spares")
    lake = Lake(config.lake)
    run_batch(spark, config, "test")
    items_source(
        "UPDATE shop.spares SET note = note || ' v2', updated_at = now() WHERE item_id <= 2"
    )
    run_batch(spark, config, "test")
    raw_at = lake.table("raw.shop_spares").current_snapshot()
    curated_at = lake.table("curated.spares").current_snapshot()
    assert raw_at is not None and curated_at is not None

    # The run that dies: clean takes keys 3 and 4; raw and curated are rolled back as if
    # their commits never happened.
    items_source(
        "UPDATE shop.spares SET note = note || ' v3', updated_at = now() WHERE item_id IN (3, 4)"
    )
    run_batch(spark, config, "test")
    procedures = f"{lake.catalog_name}.system"
    for name, snapshot in (("raw.shop_spares", raw_at), ("curated.spares", curated_at)):
        spark.sql(
            f"CALL {procedures}.rollback_to_snapshot('{name}', {snapshot.snapshot_id})"
        ).collect()
        spark.catalog.refreshTable(f"{lake.catalog_name}.{name}")
    clean_at = lake.table("clean.spares").current_snapshot()
    assert clean_at is not None

    lake_scans.clear()
    _, reports = run_batch(spark, config, "test")
    assert reports[0].rows_read == 2 and reports[0].raw_new_versions == 2
    assert lake_scans["compare clean.spares"] == 1
    # Clean already held both rows: nothing to commit there.
    current = lake.table("clean.spares").current_snapshot()
    assert current is not None and current.snapshot_id == clean_at.snapshot_id
    raw = lake.read("raw.shop_spares").to_pylist()
    assert sorted(r["_source_key"] for r in raw if r["note"].endswith("v3")) == ["3", "4"]
    curated = {r["_source_key"]: r["note"] for r in lake.read("curated.spares").to_pylist()}
    assert len(curated) == 50 and curated["3"].endswith(" v3") and curated["1"].endswith(" v2")


def test_lookback_compares_only_its_window_and_takes_a_late_commit(
    demo_run: DemoRun,
    spark: SparkSession,
    items_source: Callable[[str], None],
    lake_scans: Counter[str],
) -> None:
    """With a look-back, rows at or before the watermark are read again: only they are
    compared with raw and clean. A late commit among them is taken, the rest change nothing,
    and rows past the watermark go in as new."""
    _items_copy(items_source, "stock")
    items_source("UPDATE shop.stock SET updated_at = now() - interval '5 minutes';")
    config = items_config(demo_run.config, name="stock", lookback=timedelta(hours=1))
    lake = Lake(config.lake)
    run_batch(spark, config, "test")
    clean_before = lake.table("clean.stock").current_snapshot()
    assert clean_before is not None
    items_source(
        "INSERT INTO shop.stock VALUES (51, 'late commit', now() - interval '10 minutes');"
        " UPDATE shop.stock SET note = 'changed', updated_at = now() WHERE item_id = 9;"
    )
    lake_scans.clear()
    _, reports = run_batch(spark, config, "test")
    # All 51 rows are in the hour: 49 seen before, the late one, the changed one.
    assert reports[0].rows_read == 51
    assert reports[0].raw_new_versions == 2
    assert lake_scans["compare clean.stock"] == 1
    commit = lake.snapshots("clean.stock")[-1]
    assert commit["snapshot_id"] != clean_before.snapshot_id
    assert commit["summary"]["added-records"] == "2"
    curated = {r["_source_key"]: r["note"] for r in lake.read("curated.stock").to_pylist()}
    assert len(curated) == 51 and curated["51"] == "late commit" and curated["9"] == "changed"
