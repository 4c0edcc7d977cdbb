"""The batch job on Spark: ERP tables → raw → transform chain → clean, quarantine → curated.

Each zone write is one Iceberg commit. Spark only executes: the chain (``pipelines.chain``)
decides what happens to each row, and the ledger's counts are tallied from the chain's tagged
output before anything is written to clean or curated, so an unbalanced run fails without
publishing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ingest.erp import JdbcReader
from ingest.lineage import with_lineage
from pipelines.chain import OUTCOME_FIELDS, Chain, stage_counts
from pipelines.config import JdbcSource, JdbcTable, PipelineConfig
from pipelines.errors import LakeError, StewardError
from pipelines.lake import LINEAGE_COLUMNS, Lake
from pipelines.ledger import RunRecord

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

_OUTCOME_COLUMNS = [f.name for f in OUTCOME_FIELDS]
_TABLE_PROPERTIES = {"format-version": "2", "write.parquet.compression-codec": "zstd"}


@dataclass
class EntityReport:
    """What one batch run did for one source table (the demo summary prints these)."""

    source: str
    entity: str
    rows_read: int = 0
    raw_new_versions: int = 0
    kept: int = 0
    quarantined: int = 0
    dropped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    curated_rows: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _run_chain_on_partition(
    chain_factory: Callable[[], Chain],
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: builds the chain once per partition on the worker (rule
    packs compile there instead of being pickled) and tags every row."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        chain = chain_factory()
        for batch in batches:
            yield from chain.run(pa.Table.from_batches([batch])).to_batches()

    return run


class SparkBatchJob:
    """One batch run over every configured source table."""

    def __init__(
        self,
        spark: SparkSession,
        config: PipelineConfig,
        lake: Lake,
        chain_factory: Callable[[], Chain],
        run: RunRecord,
    ):
        self.spark = spark
        self.config = config
        self.lake = lake
        self.chain_factory = chain_factory
        self.chain = chain_factory()  # built on the driver too: bad packs fail here, first
        self.run = run

    def table(self, namespace: str, name: str) -> str:
        return f"{self.lake.catalog_name}.{namespace}.{name}"

    def execute(self) -> list[EntityReport]:
        for namespace in ("raw", "clean", "quarantine", "curated"):
            self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {self.lake.catalog_name}.{namespace}")
        reports = []
        for source_name, source in self.config.sources.items():
            reader = JdbcReader(self.spark, source_name, source)
            for table in source.tables:
                reports.append(self._entity(reader, source_name, source, table))
        return reports

    # -- one entity --------------------------------------------------------------------------

    def _entity(
        self, reader: JdbcReader, source_name: str, source: JdbcSource, table: JdbcTable
    ) -> EntityReport:
        entity = table.entity_name
        report = EntityReport(source=source_name, entity=entity)
        from pyspark.sql import functions as F

        started = time.perf_counter()
        frame = with_lineage(reader.read(table), source_name, entity, table.key, self.run.run_id)
        # Pin what was read: the source may change while the run goes on, and every later
        # step (raw, chain, counts) must see the same rows.
        frame = frame.localCheckpoint(eager=True)
        report.rows_read = frame.count()
        report.seconds["ingest"] = time.perf_counter() - started

        started = time.perf_counter()
        report.raw_new_versions = self._append_raw(frame, f"{source_name}_{entity}")
        report.seconds["raw"] = time.perf_counter() - started

        started = time.perf_counter()
        tagged = self._apply_chain(frame).localCheckpoint(eager=True)
        tallies = [
            (row["_stage"], row["_outcome"], row["_rule_id"], row["count"])
            for row in tagged.groupBy("_stage", "_outcome", "_rule_id").count().collect()
        ]
        report.seconds["transform"] = time.perf_counter() - started
        counts = stage_counts(
            entity,
            self.chain.stage_names,
            report.rows_read,
            tallies,
            durations={self.chain.stage_names[-1]: report.seconds["transform"]},
        )
        for stage_count in counts:
            report.quarantined += stage_count.quarantined
            report.dropped += stage_count.dropped
            report.reasons.update(
                {f"{stage_count.stage}/{k}": v for k, v in stage_count.reasons.items()}
            )
            self.run.record_stage(stage_count)  # raises AccountingError: nothing published
        report.kept = counts[-1].rows_out if counts else report.rows_read

        started = time.perf_counter()
        for stage in self.chain.stage_names:
            rejected = tagged.where(
                (F.col("_outcome") == "quarantine") & (F.col("_stage") == stage)
            )
            self._merge_quarantine(rejected, stage, frame.columns)
        kept = tagged.where(F.col("_outcome") == "keep").drop(*_OUTCOME_COLUMNS)
        self._merge_clean(kept, entity)
        report.curated_rows = self._sync_curated(entity)
        report.seconds["publish"] = time.perf_counter() - started
        return report

    def _apply_chain(self, frame: DataFrame) -> DataFrame:
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

        output = self.chain.output_schema(to_arrow_schema(frame.schema))
        return frame.mapInArrow(
            _run_chain_on_partition(self.chain_factory), from_arrow_schema(output)
        )

    # -- zone writes, each one Iceberg commit ------------------------------------------------

    def _exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _create(self, frame: DataFrame, name: str, partitioned_by: list | None = None) -> None:
        if self._exists(name):
            return
        writer = frame.limit(0).writeTo(name).using("iceberg")
        for key, value in _TABLE_PROPERTIES.items():
            writer = writer.tableProperty(key, value)
        if partitioned_by:
            writer = writer.partitionedBy(*partitioned_by)
        writer.create()

    def _snapshot_id(self, name: str) -> int | None:
        rows = self.spark.sql(
            f"SELECT snapshot_id FROM {name}.snapshots ORDER BY committed_at DESC LIMIT 1"
        ).collect()
        return rows[0]["snapshot_id"] if rows else None

    def _commit(self, name: str, operation: str, write: Callable[[], None]) -> None:
        """Run one write; record the snapshot it committed. A failed write commits nothing."""
        before = self._snapshot_id(name)
        try:
            write()
        except StewardError:
            raise
        except Exception as exc:
            message = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
            raise LakeError(
                f"{operation} into {name} failed, nothing committed: {message}"
            ) from None
        after = self._snapshot_id(name)
        if after != before:
            self.run.record_commit(name, after, operation)

    def _append_raw(self, frame: DataFrame, name: str) -> int:
        """Append row versions raw has not seen (by source key and content hash)."""
        from pyspark.sql import functions as F

        raw = self.table("raw", name)
        self._create(frame, raw, [F.days("_ingested_at")])
        seen = self.spark.table(raw).select("_source_key", "_content_hash")
        new = frame.join(seen, ["_source_key", "_content_hash"], "left_anti").select(*frame.columns)
        count = new.count()
        if count:
            self._commit(
                raw,
                "append",
                lambda: (
                    new.writeTo(raw)
                    .option("snapshot-property.steward.run-id", self.run.run_id)
                    .append()
                ),
            )
        return count

    def _merge_quarantine(self, rejected: DataFrame, stage: str, data_columns: list[str]) -> None:
        """Every rejected row, once, with its reason; the row itself kept as JSON so one
        quarantine table serves every entity."""
        from pyspark.sql import functions as F

        payload = [c for c in data_columns if c not in LINEAGE_COLUMNS]
        rows = rejected.select(
            *LINEAGE_COLUMNS,
            "_stage",
            "_rule_id",
            "_reason",
            F.current_timestamp().alias("_quarantined_at"),
            F.to_json(F.struct(*payload)).alias("record"),
        )
        name = self.table("quarantine", stage)
        self._create(rows, name, ["_entity"])
        if rows.isEmpty():
            return
        rows.createOrReplaceTempView("steward_quarantine_batch")
        self._commit(
            name,
            "merge",
            lambda: self.spark.sql(
                f"""MERGE INTO {name} t USING steward_quarantine_batch s
                ON t._source = s._source AND t._entity = s._entity
                   AND t._source_key = s._source_key AND t._content_hash = s._content_hash
                   AND t._rule_id = s._rule_id
                WHEN NOT MATCHED THEN INSERT *"""
            ),
        )

    def _merge_clean(self, kept: DataFrame, entity: str) -> None:
        """One row per source key: the newest clean version wins."""
        name = self.table("clean", entity)
        self._create(kept, name)
        kept.createOrReplaceTempView("steward_clean_batch")
        self._commit(
            name,
            "merge",
            lambda: self.spark.sql(
                f"""MERGE INTO {name} t USING steward_clean_batch s
                ON t._source_key = s._source_key
                WHEN MATCHED AND (t._content_hash <> s._content_hash
                                  OR t._rules_version <> s._rules_version)
                    THEN UPDATE SET *
                WHEN NOT MATCHED THEN INSERT *"""
            ),
        )

    def _sync_curated(self, entity: str) -> int:
        """Make curated equal to clean in one commit (later stages gate and augment here)."""
        clean = self.table("clean", entity)
        name = self.table("curated", entity)
        self._create(self.spark.table(clean), name)
        self._commit(
            name,
            "merge",
            lambda: self.spark.sql(
                f"""MERGE INTO {name} t USING {clean} s
                ON t._source_key = s._source_key
                WHEN MATCHED AND (t._content_hash <> s._content_hash
                                  OR t._rules_version <> s._rules_version)
                    THEN UPDATE SET *
                WHEN NOT MATCHED THEN INSERT *
                WHEN NOT MATCHED BY SOURCE THEN DELETE"""
            ),
        )
        return self.spark.table(name).count()


def run_batch(
    spark: SparkSession,
    config: PipelineConfig,
    config_digest: str,
    chain_factory: Callable[[], Chain] | None = None,
) -> tuple[str, list[EntityReport]]:
    """Run the batch job under a new ledger entry; returns the run id and per-entity reports.

    Any failure marks the run failed in the ledger (with its one-line error) and propagates.
    """
    from functools import partial

    from pipelines.ledger import RunLedger
    from pipelines.transform import build_chain

    lake = Lake(config.lake)
    factory = chain_factory or partial(build_chain, config.transform)
    ledger = RunLedger(config.lake.ledger)
    with ledger.run("batch", config_digest) as run:
        reports = SparkBatchJob(spark, config, lake, factory, run).execute()
    return run.run_id, reports
