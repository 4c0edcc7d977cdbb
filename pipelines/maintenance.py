"""Table maintenance for the batch zones: fold deletes into data files, expire old snapshots.

The batch tables are merge-on-read (``spark_job._TABLE_PROPERTIES``): an incremental run writes
position-delete files instead of rewriting data files, which keeps runs cheap but makes every
read apply those deletes, and every commit keeps a snapshot. ``maintain`` runs Iceberg's Spark
procedures on each batch entity's raw, clean and curated table, between batch runs:

1. ``rewrite_data_files``: data files that have delete files, or are small enough to bin-pack,
   are rewritten without the deleted rows; ``rewrite_position_delete_files`` then drops the
   delete files that no longer point at live data. The rows a reader sees do not change.
2. ``expire_snapshots`` older than ``older_than`` beyond the last ``retain_last``, never
   expiring what the next run needs: a raw table keeps its newest snapshot that carries
   the incremental state (the watermark or CRM cursor in its summary, which the job finds by
   walking back from the current snapshot), so no source is re-read from the beginning.
3. Curated's "level with clean" mark (``LEVEL_PROPERTY``) names clean's and curated's
   snapshots; when it held before, it is set to the rewritten snapshots, so the next run
   still takes the short way (clean's changes are curated's) instead of a whole-table diff.

Stream tables are not touched: the checkpoint follower reads the files each stream commit
added, and orders commits by sequence number once snapshots are expired
(``pipelines/stream_checkpoints.py``); their compaction is a separate, later job.
Orphan files are not removed: a file an in-flight writer just wrote looks the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.crm import CrmCursor
from pipelines.config import PipelineConfig
from pipelines.lake import Lake, raw_table_name
from pipelines.spark_job import LEVEL_PROPERTY, Watermark

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class TableFiles:
    """A table's current snapshot, live data and delete files, and snapshots kept."""

    snapshot_id: int | None
    data_files: int
    delete_files: int
    snapshots: int

    @classmethod
    def of(cls, table: Table) -> TableFiles:
        current = table.current_snapshot()
        summary = current.summary.additional_properties if current and current.summary else {}
        return cls(
            current.snapshot_id if current else None,
            int(summary.get("total-data-files", 0)),
            int(summary.get("total-delete-files", 0)),
            len(table.metadata.snapshots),
        )


@dataclass(frozen=True)
class MaintenanceReport:
    """What maintenance did to one table."""

    table: str
    before: TableFiles
    after: TableFiles
    kept_for_state: int | None  # the snapshot kept because the next run reads its state

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "before": self.before.__dict__,
            "after": self.after.__dict__,
            "kept_for_state": self.kept_for_state,
        }


def batch_tables(config: PipelineConfig) -> list[tuple[str, str, str]]:
    """Each batch entity's (raw, clean, curated) table names, ``namespace.table``."""
    return [
        (raw_table_name(source_name, entity), f"clean.{entity}", f"curated.{entity}")
        for source_name, source in config.sources.items()
        for entity in source.entity_names()
    ]


def state_snapshot(table: Table) -> Any | None:
    """The newest ancestor of the current snapshot whose summary holds incremental state (a
    watermark or a CRM cursor): the one ``SparkBatchJob._stored_state`` reads."""
    from pyiceberg.table.snapshots import ancestors_of

    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if Watermark.from_summary(summary) is not None or CrmCursor.from_summary(summary):
            return snapshot
    return None


class TableMaintenance:
    """Iceberg's maintenance procedures on the lake's batch tables, through one Spark session."""

    def __init__(self, spark: SparkSession, lake: Lake, older_than: timedelta, retain_last: int):
        if retain_last < 1:
            raise ValueError("retain_last must keep at least the current snapshot")
        self.spark = spark
        self.lake = lake
        self.cutoff = datetime.now(UTC) - older_than
        self.retain_last = retain_last

    def run(self, config: PipelineConfig) -> list[MaintenanceReport]:
        existing = set(self.lake.tables())
        reports: list[MaintenanceReport] = []
        for raw, clean, curated in batch_tables(config):
            if raw in existing:
                reports.append(self.maintain(raw, keep_state=True))
            level = {clean, curated} <= existing and self._is_level(clean, curated)
            reports.extend(self.maintain(name) for name in (clean, curated) if name in existing)
            if level:
                self._mark_level(clean, curated)
        return reports

    def maintain(self, name: str, *, keep_state: bool = False) -> MaintenanceReport:
        """Compact ``name``, then expire its old snapshots (keeping the state snapshot)."""
        before = TableFiles.of(self.lake.table(name))
        qualified = f"{self.lake.catalog_name}.{name}"
        procedures = f"{self.lake.catalog_name}.system"
        self.spark.sql(
            f"CALL {procedures}.rewrite_data_files(table => '{name}',"
            " options => map('delete-file-threshold', '1'))"
        ).collect()
        self.spark.sql(
            f"CALL {procedures}.rewrite_position_delete_files(table => '{name}',"
            " options => map('rewrite-all', 'true'))"
        ).collect()
        cutoff = self.cutoff
        kept = None
        if keep_state and (state := state_snapshot(self.lake.table(name))) is not None:
            kept = state.snapshot_id
            cutoff = min(cutoff, datetime.fromtimestamp(state.timestamp_ms / 1000, UTC))
        self.spark.sql(
            f"CALL {procedures}.expire_snapshots(table => '{name}',"
            f" older_than => TIMESTAMP '{cutoff.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC',"
            f" retain_last => {self.retain_last})"
        ).collect()
        self.spark.catalog.refreshTable(qualified)
        return MaintenanceReport(name, before, TableFiles.of(self.lake.table(name)), kept)

    def _is_level(self, clean: str, curated: str) -> bool:
        curated_table = self.lake.table(curated)
        mark = curated_table.properties.get(LEVEL_PROPERTY)
        return mark is not None and mark == self._level_mark(clean, curated)

    def _level_mark(self, clean: str, curated: str) -> str:
        """``LEVEL_PROPERTY``'s value for the two tables' current snapshots."""
        return ":".join(
            str(TableFiles.of(self.lake.table(name)).snapshot_id) for name in (clean, curated)
        )

    def _mark_level(self, clean: str, curated: str) -> None:
        mark = self._level_mark(clean, curated)
        self.spark.sql(
            f"ALTER TABLE {self.lake.catalog_name}.{curated}"
            f" SET TBLPROPERTIES ('{LEVEL_PROPERTY}' = '{mark}')"
        )
