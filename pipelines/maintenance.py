"""Table maintenance: fold deletes and small files into data files, expire old snapshots.

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

The stream's tables (every table a Flink job has committed to: its raw and clean tables,
the quarantine tables it shares with the batch job, ``audit.stream_drops``) gain one small
file per checkpoint and table. They are bin-packed from two files on, and their snapshots
expire like the others' except for two that readers still need:

- the snapshots the checkpoint follower has not handled yet (those after its cursor in the
  run ledger; all of them if it has handled none): it reads the files each stream commit
  added, through that commit's snapshot (``pipelines/stream_checkpoints.py``);
- the newest stream commit, and everything after it: a stream job that restores from a
  checkpoint walks back from the current snapshot to its last commit to learn which
  checkpoints it has already committed. Without that commit it would commit the restored
  checkpoint's files a second time.

Both are kept by expiring only what is older than the oldest of them. Maintenance may run
while the stream job runs: appends and rewrites of other files do not conflict in Iceberg.
Orphan files are not removed: a file an in-flight writer just wrote looks the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ingest.crm import CrmCursor
from pipelines.config import PipelineConfig
from pipelines.lake import Lake, raw_table_name
from pipelines.ledger import RunLedger
from pipelines.spark_job import LEVEL_PROPERTY, Level, Watermark
from pipelines.stream_checkpoints import checkpoint_key, new_snapshots

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot
    from pyspark.sql import SparkSession

# Iceberg's default is 5; a stream table that commits rarely would keep its small files.
_STREAM_MIN_INPUT_FILES = 2


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
    kept_for_state: int | None  # the snapshot kept because the next batch run reads its state
    kept_for_stream: int | None = None  # the oldest snapshot the stream still needs (docstring)

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "before": self.before.__dict__,
            "after": self.after.__dict__,
            "kept_for_state": self.kept_for_state,
            "kept_for_stream": self.kept_for_stream,
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


def is_stream_table(table: Table) -> bool:
    """Whether a Flink job has committed to ``table`` (in the snapshots it still has)."""
    return any(checkpoint_key(s) is not None for s in table.metadata.snapshots)


def stream_kept(table: Table, cursor: tuple[int, int] | None) -> Snapshot | None:
    """The oldest snapshot a stream table must keep, with all after it: the oldest the
    checkpoint follower has not handled (``cursor`` is its last one, ``None`` before its
    first) or the newest stream commit, whichever is older (module docstring)."""
    from pyiceberg.table.snapshots import ancestors_of

    unread = new_snapshots(table, cursor)
    last_commit = next(
        (s for s in ancestors_of(table.current_snapshot(), table.metadata) if checkpoint_key(s)),
        None,
    )
    kept = [s for s in (*unread[:1], last_commit) if s is not None]
    return min(kept, key=lambda s: s.sequence_number or 0, default=None)


class TableMaintenance:
    """Iceberg's maintenance procedures on the lake's batch and stream tables, through one
    Spark session."""

    def __init__(self, spark: SparkSession, lake: Lake, older_than: timedelta, retain_last: int):
        if retain_last < 1:
            raise ValueError("retain_last must keep at least the current snapshot")
        self.spark = spark
        self.lake = lake
        self.cutoff = datetime.now(UTC) - older_than
        self.retain_last = retain_last

    def run(self, config: PipelineConfig) -> list[MaintenanceReport]:
        """Maintain each batch entity's tables, then the stream's (module docstring)."""
        existing = set(self.lake.tables())
        # The follower's cursors, read once: a cursor only moves forward, so one read before
        # any table is maintained keeps at least what the stream still needs.
        cursors = RunLedger(self.lake.config.ledger).stream_cursors()
        reports: list[MaintenanceReport] = []
        for raw, clean, curated in batch_tables(config):
            if raw in existing:
                reports.append(self.maintain(raw, cursors, keep_state=True))
            level = self._level(clean, curated) if {clean, curated} <= existing else None
            reports.extend(
                self.maintain(name, cursors) for name in (clean, curated) if name in existing
            )
            if level is not None:
                self._mark_level(clean, curated, level)
        done = {r.table for r in reports}
        reports.extend(
            self.maintain(name, cursors)
            for name in sorted(existing - done)
            if is_stream_table(self.lake.table(name))
        )
        return reports

    def maintain(
        self, name: str, cursors: Mapping[str, tuple[int, int]], *, keep_state: bool = False
    ) -> MaintenanceReport:
        """Compact ``name``, then expire its old snapshots, keeping the batch state snapshot
        (with ``keep_state``) and, on a stream table, what the stream still needs (``cursors``:
        the checkpoint follower's, by table)."""
        table = self.lake.table(name)
        before = TableFiles.of(table)
        stream = is_stream_table(table)
        cursor = cursors.get(name) if stream else None
        qualified = f"{self.lake.catalog_name}.{name}"
        procedures = f"{self.lake.catalog_name}.system"
        options = "'delete-file-threshold', '1'"
        if stream:
            options += f", 'min-input-files', '{_STREAM_MIN_INPUT_FILES}'"
        self.spark.sql(
            f"CALL {procedures}.rewrite_data_files(table => '{name}', options => map({options}))"
        ).collect()
        self.spark.sql(
            f"CALL {procedures}.rewrite_position_delete_files(table => '{name}',"
            " options => map('rewrite-all', 'true'))"
        ).collect()
        cutoff = self.cutoff
        kept = kept_for_stream = None
        table = self.lake.table(name)
        if keep_state and (state := state_snapshot(table)) is not None:
            kept = state.snapshot_id
            cutoff = min(cutoff, _keeps_from(table, state))
        if stream and (needed := stream_kept(table, cursor)) is not None:
            kept_for_stream = needed.snapshot_id
            cutoff = min(cutoff, _keeps_from(table, needed))
        self.spark.sql(
            f"CALL {procedures}.expire_snapshots(table => '{name}',"
            f" older_than => TIMESTAMP '{cutoff.strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC',"
            f" retain_last => {self.retain_last})"
        ).collect()
        self.spark.catalog.refreshTable(qualified)
        after = TableFiles.of(self.lake.table(name))
        return MaintenanceReport(name, before, after, kept, kept_for_stream)

    def _level(self, clean: str, curated: str) -> Level | None:
        """Curated's level mark, if it names the two tables' current snapshots."""
        level = Level.parse(self.lake.table(curated).properties.get(LEVEL_PROPERTY))
        return level if level is not None and level.at(*self._snapshots(clean, curated)) else None

    def _snapshots(self, clean: str, curated: str) -> tuple[int | None, int | None]:
        return (
            TableFiles.of(self.lake.table(clean)).snapshot_id,
            TableFiles.of(self.lake.table(curated)).snapshot_id,
        )

    def _mark_level(self, clean: str, curated: str, level: Level) -> None:
        """Mark the tables level again at their new snapshots; compaction and expiry change no
        row, so the figures carry over."""
        mark = Level(*self._snapshots(clean, curated), rows=level.rows).mark
        self.spark.sql(
            f"ALTER TABLE {self.lake.catalog_name}.{curated}"
            f" SET TBLPROPERTIES ('{LEVEL_PROPERTY}' = '{mark}')"
        )


def _keeps_from(table: Table, oldest: Snapshot) -> datetime:
    """An ``older_than`` for ``expire_snapshots`` that keeps ``oldest`` and every snapshot from
    it to the current one: the earliest of their commit times, since writers on different
    clocks may stamp a later commit a little earlier (Iceberg accepts a minute of skew)."""
    from pyiceberg.table.snapshots import ancestors_of

    earliest = oldest.timestamp_ms
    for snapshot in ancestors_of(table.current_snapshot(), table.metadata):
        earliest = min(earliest, snapshot.timestamp_ms)
        if snapshot.snapshot_id == oldest.snapshot_id:
            break
    return datetime.fromtimestamp(earliest / 1000, UTC)
