"""The batch job on Spark: ERP tables → transform chain → clean, quarantine, raw → curated.

Spark only executes: the chain (``pipelines.chain``) decides what happens to each row, and the
ledger's counts are tallied from the chain's tagged output before anything is written, so an
unbalanced run fails without publishing.

Every large read's chain runs first, one entity after another; then the entities are written
side by side, from one driver thread each. A small read (up to ``_FEW_ROWS`` rows, an
incremental run's) is held by the driver instead: one query, its rows collected into a local
relation that every later query derives from without a Spark job to pin it, its chain run in
the driver process; a read past a watermark is read, cleaned and written in its own thread,
beside the others. A large read is pinned by checkpoints, released once its entity is written,
and its chain runs in Spark's Python workers.
Order of the commits for one entity, and why:

1. ``quarantine.<stage>`` and ``clean.<entity>`` take the rows of this read (``MERGE INTO``,
   only rows that actually changed, so an unchanged re-run commits nothing);
2. ``raw.<source>_<entity>`` appends the row versions it has not seen, and its snapshot summary
   carries the watermark the read covered. This is the commit that moves the incremental
   state, and it comes after clean: a run that dies earlier leaves the watermark where it was,
   so the next run re-reads the same window (and re-reading changes nothing);
3. ``curated.<entity>`` is brought level with clean (new, changed and deleted keys): from the
   rows clean took in step 1 when curated was level with clean before it, else by comparing
   the two tables; then a table property records the level (``LEVEL_PROPERTY``).

What an incremental run does not scan: rows past the stored watermark are versions no earlier
run read, so neither raw nor clean can hold them, and they skip the comparison with those
tables (only a look-back window's rows are compared). Clean counts as holding nothing past the
watermark when raw's state-bearing commit recorded clean's snapshot (``CLEAN_AT_PROPERTY``)
and clean has had only compactions since; a run that died between its clean and raw commits
fails that test, and the next run compares every row. Likewise the curated gate's whole-table
figures (rows, keys held twice) follow from the figures of the level mark and the counts of
clean's MERGE commit when curated was level, instead of a group-by over the table.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any, TypeVar

from ingest.crm_config import CrmSource
from ingest.erp import JdbcReader
from ingest.lineage import with_lineage
from pipelines.chain import OUTCOME_FIELDS, Chain, stage_counts
from pipelines.config import JdbcSource, JdbcTable, PipelineConfig
from pipelines.errors import (
    ConfigError,
    LakeError,
    QualityGateFailed,
    StewardError,
    first_line,
)
from pipelines.lake import LINEAGE_COLUMNS, Lake, new_column_warning, raw_table_name
from pipelines.ledger import RunRecord, StageCounts
from pipelines.quality import QualityGate, QualityResult, ZoneStats, raise_if_failed

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from ingest.crm import CrmClient

T = TypeVar("T")

_OUTCOME_COLUMNS = [f.name for f in OUTCOME_FIELDS]
# Merge-on-read: a MERGE that changes 1% of the keys writes those rows and small position-delete
# files, where copy-on-write rewrites every data file holding one of them (every file, when
# the keys are spread). pyiceberg applies position deletes on read (not equality deletes, which
# the batch job never writes).
_TABLE_PROPERTIES = {
    "format-version": "2",
    "write.parquet.compression-codec": "zstd",
    "write.merge.mode": "merge-on-read",
    "write.update.mode": "merge-on-read",
    "write.delete.mode": "merge-on-read",
    # A MERGE's rows are written by the tasks of its join. The default (a rebalance by data
    # file) adds a shuffle after the join, one more Spark job in every MERGE, and puts every
    # inserted row (which has no data file yet) in one partition of up to 384 MB: a full
    # load's clean and curated written by one task.
    "write.merge.distribution-mode": "none",
}
# Columns that say which version of the rules and policies produced a row: a change in any of
# them re-publishes the row even when its source content did not change.
_VERSION_COLUMNS = ("_content_hash", "_rules_version", "_privacy_policy_version")
WATERMARK_PROPERTY = "steward.watermark"
DELETES_TABLE = "_deletes"
# The ledger stage (and quarantine table) of rows that do not fit their source contract.
CONTRACT_STAGE = "contract"
# Entities written at once, each from its own driver thread. Most of a write's time is
# driver-side (planning a dozen small Spark jobs, Iceberg commits, the gate's checks) and
# waiting, which overlaps well even on two cores; Spark schedules the threads' jobs side by side.
PUBLISH_THREADS = 4
# A read up to this many rows (an incremental run's, typically) goes through its chain and its
# writes beside the next entities' reads (``SparkBatchJob.execute``), and its tagged rows are
# collected once to the driver (``SparkBatchJob._transform``). Larger reads' chains run one
# after another, so that each of their transform figures is one entity's alone.
_FEW_ROWS = 50_000
# A curated table property (``Level``), written after a sync made curated level with clean
# (see ``SparkBatchJob._sync_curated``).
LEVEL_PROPERTY = "steward.level-with-clean"
# In a raw commit's summary with the incremental state: clean's snapshot once this run's clean
# MERGE was done, so the next run knows clean holds nothing past the watermark.
CLEAN_AT_PROPERTY = "steward.clean-snapshot"
# Snapshot summary counts that a MERGE into a merge-on-read table does not produce; a commit
# with any of them is not counted from its summary (``SparkBatchJob._figures_after``).
_NOT_MERGE_COUNTS = ("deleted-records", "added-equality-deletes", "removed-equality-deletes")


@dataclass(frozen=True)
class Level:
    """``LEVEL_PROPERTY``: curated was level with clean at these snapshots (None: the table had
    none), when clean held ``rows`` rows, no key twice (None: not known, e.g. an unchecked
    entity). Written ``<clean>:<curated>[:<rows>]``."""

    clean: int | None
    curated: int | None
    rows: int | None = None

    @property
    def mark(self) -> str:
        snapshots = f"{self.clean}:{self.curated}"
        return snapshots if self.rows is None else f"{snapshots}:{self.rows}"

    @classmethod
    def parse(cls, mark: str | None) -> Level | None:
        """The level a mark records; None for no mark or one this code did not write."""
        parts = (mark or "").split(":")
        if len(parts) not in (2, 3):
            return None
        try:
            numbers = [None if part == "None" else int(part) for part in parts]
        except ValueError:
            return None
        return cls(*numbers)

    def at(self, clean: int | None, curated: int | None) -> bool:
        return (self.clean, self.curated) == (clean, curated)


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
    deleted: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    curated_rows: int = 0
    watermark: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Watermark:
    """How far a source table has been read: the newest watermark value and, among rows with
    that value, the greatest key (so rows committed in the same instant are not skipped)."""

    column: str
    value: str
    key: str

    def to_summary(self) -> dict[str, str]:
        prefix = f"{WATERMARK_PROPERTY}."
        return {
            prefix + "column": self.column,
            prefix + "value": self.value,
            prefix + "key": self.key,
        }

    @classmethod
    def from_summary(cls, summary: dict[str, str]) -> Watermark | None:
        prefix = f"{WATERMARK_PROPERTY}."
        try:
            return cls(
                summary[prefix + "column"], summary[prefix + "value"], summary[prefix + "key"]
            )
        except KeyError:
            return None


@dataclass
class EntityRead:
    """One entity's rows as read from its source (before lineage), and the incremental state
    this read covers (committed with raw, see the module docstring): ``state`` as known when
    reading (a CRM cursor), or the newest value of the ``watermark`` column among the rows
    read, with the greatest key among the rows that have it (``Watermark``)."""

    source: str
    entity: str
    key: str
    frame: DataFrame
    state: dict[str, str] = field(default_factory=dict)
    watermark: str | None = None
    soft_delete_column: str | None = None
    # Rows past the stored watermark, which no earlier run read (None: any row may be in the
    # lake already, as on a full read, a CRM read or a table without a watermark), and
    # whether the read took only such rows (no look-back window).
    novel: Column | None = None
    novel_only: bool = False
    # The clean snapshot recorded with the stored state (``CLEAN_AT_PROPERTY``).
    clean_at_state: int | None = None
    # A read expected to be small (an incremental JDBC read, a CRM export of up to
    # ``_FEW_ROWS`` records) is held by the driver once read (``SparkBatchJob._held_read``).
    # An incremental JDBC read is one query; ``parallel`` reads the same rows with parallel
    # range queries, for when it turns out larger.
    few: bool = False
    parallel: Callable[[], DataFrame] | None = None


@dataclass(frozen=True)
class Gated:
    """The rows a gate checked, as it collected them, and its result."""

    rows: pa.Table
    result: QualityResult


@dataclass(frozen=True)
class CleanChanges:
    """What one run merged into ``clean.<entity>``: the changed rows and the deleted keys
    (``_delete`` true, other columns null), how many there are (None: not counted) and
    whether their keys are distinct, the changed rows as the clean gate collected them when
    they are all it checked (None otherwise), and clean's snapshot before and after.
    ``gate`` is the clean gate's result when the changed rows are exactly the rows it
    checked (``checked`` then holds them; None otherwise: a soft delete took some away)."""

    rows: DataFrame
    size: int | None
    distinct_keys: bool
    checked: pa.Table | None
    deleted: int
    before: int | None
    after: int | None
    gate: QualityResult | None = None


@dataclass(frozen=True)
class Ingested:
    """One entity's read, pinned, conformed to its contract and counted in the ledger: the
    conforming rows and every row as read (hard deletes), with the report so far (rows read,
    the incremental state they cover)."""

    read: EntityRead
    report: EntityReport
    frame: DataFrame
    source: DataFrame
    conforming: int  # rows in ``frame``
    # A small read's conforming rows, collected: then ``frame`` and ``source`` are held by the
    # driver (``SparkBatchJob._hold``), and the chain runs on the driver too.
    held_rows: pa.Table | None


@dataclass(frozen=True)
class Transformed(Ingested):
    """One entity's read through the chain, counted in the ledger, not yet written: what
    ``Ingested`` holds, and the tagged rows with their outcome tallies (stage, outcome,
    rule, rows)."""

    tagged: DataFrame
    tallies: list[tuple[str, str, str, int]]
    # A small read's tagged rows, collected once for the tallies and the clean gate.
    collected: pa.Table | None = None


# The chains a Python worker has unpickled, by the digest of their pickle. Spark ships the
# mapInArrow function with every task and a worker runs many tasks: keeping the chain lets the
# rule packs, detectors and GX suites it builds on first use serve every later task.
_WORKER_CHAINS: OrderedDict[str, Chain] = OrderedDict()
_WORKER_CHAINS_KEPT = 8


def _worker_chain(digest: str, blob: bytes) -> Chain:
    import pickle

    chain = _WORKER_CHAINS.get(digest)
    if chain is None:
        chain = _WORKER_CHAINS[digest] = pickle.loads(blob)
        while len(_WORKER_CHAINS) > _WORKER_CHAINS_KEPT:
            _WORKER_CHAINS.popitem(last=False)
    _WORKER_CHAINS.move_to_end(digest)
    return chain


def _tag_partitions(chain: Chain) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: tags every row of every batch with its chain outcome."""
    import hashlib

    from pyspark import cloudpickle

    blob = cloudpickle.dumps(chain)
    digest = hashlib.sha256(blob).hexdigest()

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        live = _worker_chain(digest, blob)
        for batch in batches:
            yield from live.run(pa.Table.from_batches([batch])).to_batches()

    return run


class SparkBatchJob:
    """One batch run over every configured source table."""

    def __init__(
        self,
        spark: SparkSession,
        config: PipelineConfig,
        lake: Lake,
        chain_for: Callable[[str], Chain],
        run: RunRecord,
        full: bool = False,
    ):
        self.spark = spark
        self.config = config
        self.lake = lake
        self.chain_for = chain_for
        self.run = run
        self.full = full
        self.gate = QualityGate(config.quality, config.lake.root)
        # Entities are written from threads (``PUBLISH_THREADS``): writes to the tables they
        # share (``quarantine.<stage>``, ``raw._deletes``) would conflict as concurrent
        # Iceberg commits, and the gate's GX context is not thread-safe, so each takes its turn.
        self._shared_tables = threading.Lock()
        self._gate = threading.Lock()
        # Each entity's checkpoints (``_pin``), released once the entity is written.
        self._pinned: dict[str, list[DataFrame]] = {}

    def table(self, namespace: str, name: str) -> str:
        return f"{self.lake.catalog_name}.{namespace}.{name}"

    def execute(self) -> list[EntityReport]:
        # Every chain is built (rule packs compiled, policies and keys loaded) before any
        # source is read: a configuration mistake stops the run with nothing written.
        chains = {
            entity: self.chain_for(entity)
            for source in self.config.sources.values()
            for entity in source.entity_names()
        }
        for namespace in ("raw", "clean", "quarantine", "curated"):
            self.spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {self.lake.catalog_name}.{namespace}")
        try:
            reports = self._read_and_publish(chains)
        finally:
            # An entity whose read or chain failed was never written: its checkpoints too.
            for entity in list(self._pinned):
                self._release(entity)
        self.gate.finish(self.run.run_id)
        return reports

    def _read_and_publish(self, chains: dict[str, Chain]) -> list[EntityReport]:
        # The sources are read one entity after another. A large read's chain runs then,
        # too: it keeps every executor core busy, and alone its transform time is its own
        # (the ledger's and the benchmark's figure); its writes wait for the last chain. The
        # writes run side by side (``PUBLISH_THREADS``), each entity in its own commit order
        # (module docstring); a failing entity fails the run once the others finished. A
        # small read (``_FEW_ROWS``, an incremental run) goes through its chain and its
        # writes at once, beside the next entities' reads: its Spark jobs are mostly
        # scheduling and driver-side waits, which run well side by side. A read expected to
        # be small (``EntityRead.few``) is read in its thread too, so that no entity's
        # writes wait for the reads of the entities before it.
        with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="steward-publish") as pool:
            publishing: list[Future[EntityReport] | Transformed] = []
            for source_name, source in self.config.sources.items():
                for read in self._reads(source_name, source):
                    chain = chains[read.entity]
                    if read.few:
                        publishing.append(pool.submit(self._ingest_and_publish, read, chain))
                        continue
                    ingested = self._ingest(read)
                    if ingested.report.rows_read <= _FEW_ROWS:
                        publishing.append(pool.submit(self._transform_and_publish, ingested, chain))
                    else:
                        publishing.append(self._transform(ingested, chain))
            futures = [
                waiting if isinstance(waiting, Future) else pool.submit(self._publish, waiting)
                for waiting in publishing
            ]
        return [future.result() for future in futures]

    # -- reading sources ---------------------------------------------------------------------

    def _reads(self, source_name: str, source: JdbcSource | CrmSource) -> Iterator[EntityRead]:
        if isinstance(source, JdbcSource):
            reader = JdbcReader(self.spark, source_name, source)
            for table in source.tables:
                yield self._read_jdbc(reader, source_name, table)
            return
        from ingest.crm import CrmClient

        with CrmClient(source_name, source) as client:
            for entity in source.entity_names():
                read = self._read_crm(client, source_name, entity, source.entity(entity).key)
                if read is not None:
                    yield read

    def _raw_name(self, source_name: str, entity: str) -> str:
        return f"{self.lake.catalog_name}.{raw_table_name(source_name, entity)}"

    def _read_jdbc(self, reader: JdbcReader, source_name: str, table: JdbcTable) -> EntityRead:
        """The table's rows past its stored watermark (all of them on a full run); Spark
        pushes the comparison down into the source's SQL. A read past a watermark is expected
        to be small: it is one query, not parallel ranges (``EntityRead.few``)."""
        raw = self._raw_name(source_name, table.entity_name)
        stored = None if self.full else self._stored_state(raw, Watermark.from_summary)
        incremental = stored is not None and table.watermark is not None
        frame = reader.read(table, parallel=not incremental)

        read = EntityRead(
            source_name,
            table.entity_name,
            table.key,
            frame,
            watermark=table.watermark,
            soft_delete_column=table.soft_delete_column,
        )
        if stored is not None and table.watermark is not None:
            previous, summary = stored
            after = self._after(frame, table, previous)
            read.frame = frame.where(after)
            read.few = True
            read.parallel = lambda: reader.read(table).where(after)
            read.novel = self._past(frame, table, previous)
            read.novel_only = table.lookback.total_seconds() <= 0
            clean_at = summary.get(CLEAN_AT_PROPERTY)
            read.clean_at_state = int(clean_at) if clean_at else None
        return read

    def _read_crm(
        self, client: CrmClient, source_name: str, entity: str, key: str
    ) -> EntityRead | None:
        """The entity's records since the stored cursor, paged on the driver (CRM exports
        are small next to ERP tables). Nested values (dialogue turns) are kept as JSON."""

        from ingest.crm import CrmCursor

        raw = self._raw_name(source_name, entity)
        stored = None if self.full else self._stored_state(raw, CrmCursor.from_summary)
        cursor = stored[0] if stored is not None else None
        records: list[dict[str, Any]] = []
        for page in client.pages(entity, cursor):  # type: ignore[arg-type]
            records.extend(_flat(record) for record in page.records)
            cursor = page.cursor
        if records:
            frame = self.spark.createDataFrame(_records_table(records).to_pandas())
        elif self._exists(raw):
            frame = self.spark.table(raw).drop(*LINEAGE_COLUMNS).limit(0)
        else:
            return None  # nothing read yet and nothing to describe the entity's columns
        summary = cursor.to_summary() if cursor is not None else {}
        few = len(records) <= _FEW_ROWS
        return EntityRead(source_name, entity, key, frame, state=summary, few=few)

    def _stored_state(
        self, raw: str, parse: Callable[[dict[str, str]], T | None]
    ) -> tuple[T, dict[str, str]] | None:
        """The incremental state recorded by the newest raw commit that has one (walking back
        from the current snapshot), with that commit's whole summary."""
        if not self._exists(raw):
            return None
        table = self._iceberg_table(raw)
        snapshot = table.currentSnapshot()
        while snapshot is not None:
            summary = dict(snapshot.summary())
            state = parse(summary)
            if state is not None:
                return state, summary
            parent = snapshot.parentId()
            snapshot = table.snapshot(parent) if parent is not None else None
        return None

    # -- one entity --------------------------------------------------------------------------

    def _ingest(self, read: EntityRead) -> Ingested:
        """Read and conform one entity's rows, and record the counts."""
        report = EntityReport(source=read.source, entity=read.entity)
        started = time.perf_counter()
        frame, source, conform, mark, held_rows = self._conform(read)
        report.rows_read = conform.rows_in
        report.watermark = mark.to_summary() if mark is not None else dict(read.state)
        report.seconds["ingest"] = time.perf_counter() - started
        report.quarantined += conform.quarantined
        report.reasons.update({f"{conform.stage}/{k}": v for k, v in conform.reasons.items()})
        return Ingested(read, report, frame, source, conform.rows_out, held_rows)

    def _transform_and_publish(self, ingested: Ingested, chain: Chain) -> EntityReport:
        return self._publish(self._transform(ingested, chain))

    def _ingest_and_publish(self, read: EntityRead, chain: Chain) -> EntityReport:
        return self._transform_and_publish(self._ingest(read), chain)

    def _transform(self, ingested: Ingested, chain: Chain) -> Transformed:
        """Run the chain over one entity's conformed rows, and record the counts."""
        read, report = ingested.read, ingested.report
        entity = read.entity
        started = time.perf_counter()
        collected = None
        if ingested.held_rows is not None:
            # A small read's rows are held by the driver, and its chain runs here: a Spark job
            # through the Python workers costs more than the chain's work on a few thousand
            # rows. The tagged rows are held here too, for the writes.
            collected = chain.run(ingested.held_rows)
            tagged = _local_frame(self.spark, collected, _tagged_schema(ingested.frame, chain))
        else:
            tagged = self._pin(self._apply_chain(ingested.frame, chain), entity)
            if ingested.conforming <= _FEW_ROWS:
                collected = _arrow(tagged)
        if collected is not None:
            # A small read is collected once: its tallies are counted here and the clean
            # gate checks its kept rows without another job.
            counted = collected.group_by(["_stage", "_outcome", "_rule_id"]).aggregate(
                [([], "count_all")]
            )
            tallies = [
                (row["_stage"], row["_outcome"], row["_rule_id"], row["count_all"])
                for row in counted.to_pylist()
            ]
        else:
            tallies = [
                (row["_stage"], row["_outcome"], row["_rule_id"], row["count"])
                for row in tagged.groupBy("_stage", "_outcome", "_rule_id").count().collect()
            ]
        report.seconds["transform"] = time.perf_counter() - started
        for counts in stage_counts(
            entity,
            chain.stage_names,
            ingested.conforming,
            tallies,
            durations={chain.stage_names[-1]: report.seconds["transform"]},
        ):
            report.quarantined += counts.quarantined
            report.dropped += counts.dropped
            report.reasons.update({f"{counts.stage}/{k}": v for k, v in counts.reasons.items()})
            self.run.record_stage(counts)  # raises AccountingError: nothing published
        report.kept = report.rows_read - report.quarantined - report.dropped
        return Transformed(**vars(ingested), tagged=tagged, tallies=tallies, collected=collected)

    def _publish(self, done: Transformed) -> EntityReport:
        """Write one transformed entity (``_write``), then release its checkpoints."""
        try:
            return self._write(done)
        finally:
            self._release(done.read.entity)

    def _write(self, done: Transformed) -> EntityReport:
        """Write one transformed entity: quarantine and clean, raw with the watermark, then
        curated (the order the module docstring gives)."""
        import pyarrow.compute as pc
        from pyspark.sql import functions as F

        read, report, tagged = done.read, done.report, done.tagged
        started = time.perf_counter()
        # One MERGE per stage, whichever of its rules rejected the rows (tallies are per rule).
        quarantining = dict.fromkeys(
            stage for stage, outcome, _, count in done.tallies if outcome == "quarantine" and count
        )
        for stage in quarantining:
            rejected = tagged.where(
                (F.col("_outcome") == "quarantine") & (F.col("_stage") == stage)
            )
            self._merge_quarantine(rejected, stage, done.frame.columns)
        kept = tagged.where(F.col("_outcome") == "keep").drop(*_OUTCOME_COLUMNS)
        gated = None
        if report.kept:
            collected = None
            if done.collected is not None:
                keep = pc.equal(done.collected["_outcome"], "keep")
                collected = done.collected.filter(keep).drop_columns(_OUTCOME_COLUMNS)
            gated = self._check(kept, read.entity, "clean", whole_zone=False, collected=collected)
        window = self._window(done)
        clean_changes = self._merge_clean(done, kept, window, gated)
        report.deleted = clean_changes.deleted
        raw = self._raw_name(read.source, read.entity)
        state = dict(report.watermark)
        if clean_changes.after is not None:
            state[CLEAN_AT_PROPERTY] = str(clean_changes.after)
        # When clean moved, raw commits even without new versions (a full read that found
        # deletes), so that its newest state names clean's snapshot.
        moved = bool(report.watermark) and clean_changes.after != clean_changes.before
        report.raw_new_versions = self._append_raw(done, raw, state, window, record=moved)
        report.seconds["clean+raw"] = time.perf_counter() - started

        started = time.perf_counter()
        report.curated_rows = self._sync_curated(read, clean_changes)
        report.seconds["curated"] = time.perf_counter() - started
        return report

    # -- quality gates -------------------------------------------------------------------------

    def _conform(
        self, read: EntityRead
    ) -> tuple[DataFrame, DataFrame, StageCounts, Watermark | None, pa.Table | None]:
        """Pin the read, bring it to its contract's types (``pipelines/conform.py``) and add
        lineage.

        Returns the conforming rows with lineage, every row as read with lineage (for hard
        deletes), the ``contract`` stage's counts (recorded in the ledger), the watermark
        of the rows read (counted in the same job) and, for a small read, whose rows the
        driver holds (``_held_read``) rather than a checkpoint, the conforming rows
        collected. Rows that do not convert go to ``quarantine.contract`` as read; a batch
        whose schema broke goes there whole, and then the run stops at the quality gate.
        """
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import to_arrow_schema

        from pipelines.conform import (
            REASON_COLUMN,
            RULE_COLUMN,
            conformed_rows,
            mark_rows,
            plan_conform,
            rejected_rows,
            with_broken,
        )

        entity = read.entity
        held = self._held_read(read)
        rows_read = held if held is not None else read.frame

        def pinned(rows: DataFrame) -> DataFrame:
            # Pin what was read: the source may change while the run goes on, and every
            # later step (chain, counts, raw, watermark) must see the same rows. Rows derived
            # from rows the driver holds are held in turn, without a Spark job.
            lineage = with_lineage(
                rows,
                read.source,
                entity,
                read.key,
                self.run.run_id,
                exclude=(REASON_COLUMN, RULE_COLUMN),
            )
            if held is None:
                return self._pin(lineage, entity)
            return self._hold(lineage)[0]

        contract = self.gate.contracts.get(entity)
        clean = self.table("clean", entity)
        lake_types = (
            {f.name: f.dataType.simpleString() for f in self.spark.table(clean).schema.fields}
            if contract is not None and self._exists(clean)
            else {}
        )
        plan = (
            plan_conform(contract, to_arrow_schema(rows_read.schema), lake_types)
            if contract is not None
            else None
        )
        if plan is None or not plan.needed:
            frame = pinned(rows_read)
            rows, mark, _, collected = self._count(frame, read, collect=held is not None)
            counts = StageCounts(CONTRACT_STAGE, entity, rows, rows)
            self.run.record_stage(counts)
            return frame, frame, counts, mark, collected

        for warning in plan.warnings:
            self.run.record_warning(warning)
        try:
            marked = mark_rows(rows_read, plan)
        except AnalysisException as exc:
            plan = with_broken(plan, f"a column cannot be cast: {first_line(exc)}")
            marked = mark_rows(rows_read, plan)
        marked = pinned(marked)
        # The rules a row can fail: its columns' casts, or the batch's schema.
        rules = [cast.rule_id for cast in plan.casts] + [plan.rule_id]
        rows_in, mark, by_rule, _ = self._count(
            marked, read, (RULE_COLUMN, rules), collect=held is not None
        )
        tallies = {rule: n for rule, n in by_rule.items() if n}
        rejected = (
            rejected_rows(marked)
            .withColumnsRenamed({REASON_COLUMN: "_reason", RULE_COLUMN: "_rule_id"})
            .withColumn("_stage", F.lit(CONTRACT_STAGE))
        )
        quarantined = sum(tallies.values())
        if quarantined:
            self._merge_quarantine(rejected, CONTRACT_STAGE, read.frame.columns)
        counts = StageCounts(
            CONTRACT_STAGE,
            entity,
            rows_in,
            rows_in - quarantined,
            quarantined=quarantined,
            reasons={f"quarantine:{rule}": n for rule, n in sorted(tallies.items())},
        )
        self.run.record_stage(counts)
        if plan.broken:
            raise QualityGateFailed(
                f"{plan.broken}; {quarantined} rows quarantined, nothing published",
                stage="quality.contract",
                run_id=self.run.run_id,
            )
        source = marked.drop(REASON_COLUMN, RULE_COLUMN)
        frame = pinned(conformed_rows(marked.drop(*LINEAGE_COLUMNS), plan))
        return frame, source, counts, mark, _arrow(frame) if held is not None else None

    def _pin(self, frame: DataFrame, entity: str) -> DataFrame:
        """``frame`` evaluated once into a local checkpoint: every later query over it sees
        the same rows, from the executors' block stores. The blocks stay until ``_release``
        (the entity written), not until the JVM's collector finds the checkpoint unreachable:
        a full load pins gigabytes, which a long-lived session would otherwise carry into
        its next runs, every collection marking them again."""
        pinned = frame.localCheckpoint(eager=True)
        self._pinned.setdefault(entity, []).append(pinned)
        return pinned

    def _release(self, entity: str) -> None:
        """Drop the blocks of ``entity``'s checkpoints; its frames are not read again."""
        for frame in self._pinned.pop(entity, []):
            # A checkpoint's plan is the checkpointed RDD itself (a ``LogicalRDD``).
            frame._jdf.queryExecution().analyzed().rdd().unpersist(False)

    def _held_read(self, read: EntityRead) -> DataFrame | None:
        """A read expected to be small (``EntityRead.few``), read once and held by the driver
        (``_hold``); None for any other read, and for one that turns out to have more than
        ``_FEW_ROWS`` rows: then an incremental JDBC read is replaced by its parallel form,
        and the caller pins it with a checkpoint as a large read."""
        if not read.few:
            return None
        held, rows = self._hold(read.frame.limit(_FEW_ROWS + 1))
        if rows <= _FEW_ROWS:
            return held
        if read.parallel is not None:
            read.frame = read.parallel()
        return None

    def _hold(self, frame: DataFrame) -> tuple[DataFrame, int]:
        """``frame`` evaluated once, its rows held by the driver's JVM as a local relation,
        and how many there are; for a few rows only. Like a checkpoint, every query over the
        result sees the same rows; unlike one, the optimizer evaluates filters and
        projections over held rows itself (``ConvertToLocalRelation``), so deriving held rows
        from held rows runs no Spark job."""
        from pyspark.sql import DataFrame

        rows = frame._jdf.collectAsList()
        held = self.spark._jsparkSession.createDataFrame(rows, frame._jdf.schema())
        return DataFrame(held, self.spark), int(rows.size())

    def _check(
        self,
        rows: DataFrame,
        entity: str,
        gate: str,
        *,
        whole_zone: bool,
        zone: ZoneStats | None = None,
        collected: pa.Table | None = None,
        outcomes_of: QualityResult | None = None,
    ) -> Gated | None:
        """Batch-level checks (uniqueness, contract expectations and, on a whole table, the
        row count against the previous run) before ``gate``'s zone is written; a failure
        publishes nothing there. With ``zone``, ``rows`` are a table's changes and ``zone``
        the whole table's figures (``QualityGate.check``).

        The rows are collected as Arrow (unless ``collected`` holds them already): exact
        types (no float-for-nullable-int detour through pandas) and the path the gate's tests
        cover. Returns them with the result, or None for an unchecked entity. ``outcomes_of``:
        an earlier gate's result over the same rows, whose outcomes are taken (``check_batch``).
        """

        if entity not in self.gate.contracts and not self.gate.config.require_contracts:
            return None
        data = collected if collected is not None else _arrow(rows)
        with self._gate:
            result = self.gate.check(
                data,
                entity,
                gate=gate,
                run_id=self.run.run_id,
                rows_block=gate == "curated",
                whole_zone=whole_zone,
                zone=zone,
                outcomes_of=outcomes_of,
            )
        if result is None:
            return None
        raise_if_failed(result)
        return Gated(data, result)

    def _apply_chain(self, frame: DataFrame, chain: Chain) -> DataFrame:
        return frame.mapInArrow(_tag_partitions(chain), _tagged_schema(frame, chain))

    # -- incremental state -------------------------------------------------------------------

    def _after(self, frame: DataFrame, table: JdbcTable, mark: Watermark) -> Column:
        """Rows newer than the watermark (less the look-back), ties broken by key. Spark
        pushes the comparison down into the source's SQL."""
        from pyspark.sql import functions as F

        assert table.watermark is not None
        if table.lookback.total_seconds() > 0:
            value = F.lit(mark.value).cast(frame.schema[table.watermark].dataType)
            value = value - F.expr(f"INTERVAL {int(table.lookback.total_seconds())} SECONDS")
            return F.col(table.watermark) >= value
        return self._past(frame, table, mark)

    def _past(self, frame: DataFrame, table: JdbcTable, mark: Watermark) -> Column:
        """Rows past the watermark: a newer value, or the same value and a greater key."""
        from pyspark.sql import functions as F

        assert table.watermark is not None
        column = F.col(table.watermark)
        value = F.lit(mark.value).cast(frame.schema[table.watermark].dataType)
        key = F.lit(mark.key).cast(frame.schema[table.key].dataType)
        return (column > value) | ((column == value) & (F.col(table.key) > key))

    @staticmethod
    def _count(
        rows: DataFrame,
        read: EntityRead,
        values: tuple[str, list[str]] | None = None,
        *,
        collect: bool = False,
    ) -> tuple[int, Watermark | None, dict[str, int], pa.Table | None]:
        """In one job: how many ``rows`` there are; with a watermark column, the newest
        watermark among them; with ``values`` (a column and values it may hold), how many
        rows hold each value.

        With ``collect`` (rows the driver holds, which a small read's chain takes as Arrow),
        the job collects the rows, returned too, and the figures are counted from them
        (``_collected_figures``, held to the aggregate below by a test).
        """
        from pyspark.sql import functions as F

        if collect:
            texts = []
            if read.watermark is not None:
                texts = [
                    F.col(read.watermark).cast("string").alias(_MARK_TEXT[0]),
                    F.col(read.key).cast("string").alias(_MARK_TEXT[1]),
                ]
            table = _arrow(rows.select("*", *texts))
            count, top, by_value = _collected_figures(table, read.watermark, read.key, values)
            return count, top, by_value, table.select(rows.columns)

        figures = [F.count(F.lit(1)).alias("rows")]
        column, wanted = values if values is not None else ("", [])
        figures += [
            F.count(F.when(F.col(column) == value, True)).alias(f"value{i}")
            for i, value in enumerate(wanted)
        ]
        if read.watermark is not None:
            # Structs compare field by field: the greatest (watermark, key) is the newest
            # value and, among the rows that have it, the greatest key. Rows without a
            # watermark value do not count (max passes over nulls).
            mark = F.col(read.watermark)
            top = F.max(F.when(mark.isNotNull(), F.struct(mark, F.col(read.key))))
            figures += [
                top.getItem(read.watermark).cast("string").alias("mark_value"),
                top.getItem(read.key).cast("string").alias("mark_key"),
            ]
        row = rows.agg(*figures).collect()[0].asDict()
        by_value = {value: row[f"value{i}"] for i, value in enumerate(wanted)}
        watermark = None
        if row.get("mark_value") is not None:
            assert read.watermark is not None
            watermark = Watermark(read.watermark, row["mark_value"], row["mark_key"])
        return row["rows"], watermark, by_value, None

    # -- zone writes, each one Iceberg commit ------------------------------------------------

    def _exists(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def _ensure_table(
        self, frame: DataFrame, name: str, partitioned_by: list[Any] | None = None
    ) -> None:
        """Create the table from the frame's schema, or add the frame's new columns to it
        (nullable: older rows have no value for them)."""
        if not self._exists(name):
            writer = frame.limit(0).writeTo(name).using("iceberg")
            for key, value in _TABLE_PROPERTIES.items():
                writer = writer.tableProperty(key, value)
            if partitioned_by:
                writer = writer.partitionedBy(*partitioned_by)
            writer.create()
            return
        existing = {f.name: f.dataType for f in self.spark.table(name).schema.fields}
        for column in frame.schema.fields:
            if column.name not in existing:
                sql_type = column.dataType.simpleString()
                self.spark.sql(f"ALTER TABLE {name} ADD COLUMN `{column.name}` {sql_type}")
                table = name.removeprefix(f"{self.lake.catalog_name}.")
                self.run.record_warning(new_column_warning(table, column.name))
            elif existing[column.name] != column.dataType:
                raise LakeError(
                    f"{name}: column {column.name} is {existing[column.name].simpleString()}"
                    f" in the lake but {column.dataType.simpleString()} in this batch"
                )

    def _iceberg_table(self, name: str) -> Any:
        """The table through Iceberg's Java API, refreshed from the catalog. Snapshot ids and
        summaries read there cost no Spark job (a ``.snapshots`` query costs one each, and a
        commit needs two lookups)."""
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
            self.spark._jsparkSession, name
        )
        table.refresh()
        return table

    def _snapshot_id(self, name: str) -> int | None:
        snapshot = self._iceberg_table(name).currentSnapshot()
        return int(snapshot.snapshotId()) if snapshot is not None else None

    def _commit(self, name: str, operation: str, write: Callable[[], object]) -> None:
        """Run one write; record the snapshot it committed. A failed write commits nothing."""
        before = self._snapshot_id(name)
        try:
            write()
        except StewardError:
            raise
        except Exception as exc:
            raise LakeError(
                f"{operation} into {name} failed, nothing committed: {first_line(exc)}"
            ) from None
        after = self._snapshot_id(name)
        if after != before:
            self.run.record_commit(name, after, operation)

    def _merge(self, name: str, source: DataFrame, statement: str) -> None:
        view = f"steward_batch_{name.replace('.', '_')}"
        source.createOrReplaceTempView(view)
        self._commit(name, "merge", lambda: self.spark.sql(statement.format(t=name, s=view)))

    def _merge_quarantine(self, rejected: DataFrame, stage: str, data_columns: list[str]) -> None:
        """Every rejected row, once per version and rule, with its reason; the row itself is
        kept as JSON so one quarantine table serves every entity."""
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
        with self._shared_tables:
            self._ensure_table(rows, name, ["_entity"])
            self._merge(
                name,
                rows,
                """MERGE INTO {t} t USING {s} s
                ON t._source = s._source AND t._entity = s._entity
                   AND t._source_key <=> s._source_key AND t._content_hash = s._content_hash
                   AND t._rule_id = s._rule_id
                WHEN NOT MATCHED THEN INSERT *""",
            )

    def _window(self, done: Transformed) -> DataFrame | None:
        """The keys of the read's rows in its look-back window, pinned: rows an earlier run may
        have read too. None when there are none (``read.novel_only``), and when the read has
        no watermark to tell (``read.novel`` is None: ``_unseen`` then compares every row)."""
        from pyspark.sql import functions as F

        read = done.read
        if read.novel is None or read.novel_only:
            return None
        old = done.source.where(~F.coalesce(read.novel, F.lit(False))).select("_source_key")
        old = self._pin(old, read.entity)
        return None if old.isEmpty() else old

    @staticmethod
    def _unseen(
        rows: DataFrame,
        compare: Callable[[DataFrame], DataFrame],
        read: EntityRead,
        window: DataFrame | None,
        *,
        trusted: bool = True,
    ) -> DataFrame:
        """``rows`` less those that ``compare`` finds written already. Only the rows an earlier
        run may have read (the look-back ``window``) are compared: the rest are past the
        stored watermark, new to every table that holds nothing past it (``trusted``)."""
        if read.novel is None or not trusted:
            return compare(rows)
        if window is None:
            return rows
        novel = rows.join(window, "_source_key", "left_anti")
        return novel.unionByName(compare(rows.join(window, "_source_key", "left_semi")))

    def _untouched_since(self, name: str, snapshot_id: int | None) -> bool:
        """Whether ``name`` has had no commit but compactions (``replace``) since
        ``snapshot_id``, its current snapshot included."""
        if snapshot_id is None:
            return False
        table = self._iceberg_table(name)
        snapshot = table.currentSnapshot()
        while snapshot is not None:
            if snapshot.snapshotId() == snapshot_id:
                return True
            if snapshot.operation() != "replace":
                return False
            parent = snapshot.parentId()
            snapshot = table.snapshot(parent) if parent is not None else None
        return False

    def _changed(self, rows: DataFrame, target: str) -> DataFrame:
        """The rows whose key is new to ``target`` or whose content or versions differ.

        Merging only these keeps an unchanged re-run from committing anything: a MERGE of a
        matched but unchanged row would still write it again, with a delete of the old one.
        """
        columns = [c for c in _VERSION_COLUMNS if c in rows.columns]
        existing = self.spark.table(target).select("_source_key", *columns)
        return rows.join(existing, ["_source_key", *columns], "left_anti")

    def _merge_clean(
        self,
        done: Transformed,
        kept: DataFrame,
        window: DataFrame | None,
        gated: Gated | None,
    ) -> CleanChanges:
        """One row per source key, the newest clean version.

        Rows flagged deleted at the source (``soft_delete_column``) and, on a full read, keys
        gone from the source (absent from the keys read, not merely rejected) leave clean and
        are recorded in ``raw._deletes``. Rows past the watermark are not compared with clean
        when clean holds nothing past it (``_unseen``, the module docstring). ``gated`` is
        ``kept`` as the clean gate collected it, and its result (None for an unchecked entity).
        """
        import pyarrow.compute as pc
        from pyspark.sql import functions as F

        read = done.read
        name = self.table("clean", read.entity)
        self._ensure_table(kept, name)
        checked = gated.rows if gated is not None else None
        gate = gated.result if gated is not None else None
        # Keys distinct among the kept rows are distinct among the changes, which are some of
        # them, and the deletions: flagged rows among them, or keys gone from the source,
        # which no row read has.
        distinct = checked is not None and (
            pc.count_distinct(checked["_source_key"]).as_py() == checked.num_rows
        )
        # Only a soft-delete column or a full read can delete: otherwise no job looks for any.
        deleting: list[DataFrame] = []
        if read.soft_delete_column:
            flagged = F.coalesce(F.col(read.soft_delete_column), F.lit(False))
            deleting.append(kept.where(flagged).select("_source_key"))
            kept = kept.where(~flagged)
            if checked is not None:
                column = checked[read.soft_delete_column]
                checked = checked.filter(pc.invert(pc.fill_null(column, False)))
                gate = None  # it checked the flagged rows too
        if self.full:
            deleting.append(
                self.spark.table(name)
                .where(F.col("_source") == read.source)
                .select("_source_key")
                .join(done.source.select("_source_key"), "_source_key", "left_anti")
            )
        deleted = 0
        if deleting:
            deletes = reduce(lambda a, b: a.unionByName(b), deleting)
            if done.held_rows is not None:
                deletes, deleted = self._hold(deletes)
            else:
                deletes = self._pin(deletes, read.entity)
                deleted = deletes.count()
        before = self._snapshot_id(name)
        trusted = self._untouched_since(name, read.clean_at_state)
        changed = self._unseen(
            kept, lambda rows: self._changed(rows, name), read, window, trusted=trusted
        )
        changes = changed.withColumn("_delete", F.lit(False))
        if deleted:
            self._record_deletes(deletes, read.source, read.entity)
            placeholders = kept.limit(0).unionByName(deletes, allowMissingColumns=True)
            changes = changes.unionByName(placeholders.withColumn("_delete", F.lit(True)))
        size: int | None = None
        if changed is kept:
            # Every kept row changes clean, or leaves it when flagged. Nothing was joined, so
            # there is nothing to pin (the tagged rows are), and the gate's rows are the
            # changes.
            size = done.report.kept
        else:
            changes = self._pin(changes, read.entity)
            checked = gate = None
        self._upsert(name, changes, kept.columns, size=size)
        return CleanChanges(
            changes,
            size=size,
            distinct_keys=size == 0 or distinct,
            checked=checked,
            deleted=deleted,
            before=before,
            after=self._snapshot_id(name),
            gate=gate,
        )

    def _upsert(
        self, name: str, changes: DataFrame, columns: list[str], *, size: int | None = None
    ) -> bool:
        """Apply changed rows (``_delete`` false) and deletions (``_delete`` true) by key in
        one commit; nothing to apply commits nothing. Returns whether there was anything.
        ``size``, when known, is how many rows ``changes`` holds."""
        if changes.isEmpty() if size is None else size == 0:
            return False
        assignments = ", ".join(f"t.`{c}` = s.`{c}`" for c in columns)
        names = ", ".join(f"`{c}`" for c in columns)
        values = ", ".join(f"s.`{c}`" for c in columns)
        self._merge(
            name,
            changes,
            f"""MERGE INTO {{t}} t USING {{s}} s ON t._source_key = s._source_key
            WHEN MATCHED AND s._delete THEN DELETE
            WHEN MATCHED THEN UPDATE SET {assignments}
            WHEN NOT MATCHED AND NOT s._delete THEN INSERT ({names}) VALUES ({values})""",
        )
        return True

    def _record_deletes(self, keys: DataFrame, source_name: str, entity: str) -> None:
        """Deleted keys go to ``raw._deletes`` (once per key) so the knowledge base can drop
        their points."""
        from pyspark.sql import functions as F

        rows = keys.select(
            F.lit(source_name).alias("_source"),
            F.lit(entity).alias("_entity"),
            "_source_key",
            F.lit(self.run.run_id).alias("_run_id"),
            F.current_timestamp().alias("_deleted_at"),
        )
        name = self.table("raw", DELETES_TABLE)
        with self._shared_tables:
            self._ensure_table(rows, name)
            self._merge(
                name,
                rows,
                """MERGE INTO {t} t USING {s} s
                ON t._source = s._source AND t._entity = s._entity
                   AND t._source_key = s._source_key
                WHEN NOT MATCHED THEN INSERT *""",
            )

    def _append_raw(
        self,
        done: Transformed,
        name: str,
        state: dict[str, str],
        window: DataFrame | None,
        *,
        record: bool = False,
    ) -> int:
        """Append the row versions raw has not seen (by key and content hash); the commit
        carries the run id and the incremental state this read covered (with ``record``,
        also when there is nothing to append). Raw's versions are never past the watermark
        its own commit carries, so only the look-back window's rows are compared with it
        (``_unseen``)."""
        from pyspark.sql import functions as F

        frame = done.frame
        self._ensure_table(frame, name, [F.days("_ingested_at")])

        def not_in_raw(rows: DataFrame) -> DataFrame:
            seen = self.spark.table(name).select("_source_key", "_content_hash")
            return rows.join(seen, ["_source_key", "_content_hash"], "left_anti")

        new = self._unseen(frame, not_in_raw, done.read, window)
        if new is frame:
            count = done.conforming
        else:
            # Pinned: counted, then appended, without scanning raw twice.
            new = self._pin(new.select(*frame.columns), done.read.entity)
            count = new.count()
        if count or record:
            # Each task writes its own rows. Raw is partitioned by ingest day, which one run's
            # rows share, so the table's default (hash by partition) would shuffle them all
            # to one writer task: a whole full load written by one core, and one more job
            # for every append. Fanout takes rows of several days in any order.
            writer = (
                new.writeTo(name)
                .option("distribution-mode", "none")
                .option("fanout-enabled", "true")
            )
            for key, value in {"steward.run-id": self.run.run_id, **state}.items():
                writer = writer.option(f"snapshot-property.{key}", value)
            self._commit(name, "append", writer.append)
        return count

    def _sync_curated(self, read: EntityRead, clean_changes: CleanChanges) -> int:
        """Bring curated level with clean in one commit (new and changed keys, deletions)
        once the curated gate passed; returns the rows curated holds.

        When curated was level with clean before this run's clean merge (``LEVEL_PROPERTY``
        names that clean snapshot and curated's current one), the rows clean took are exactly
        curated's changes. Otherwise (a run that died between the two commits, a synthetic
        publish into curated, a first run) curated is compared with the whole clean table. The
        property is written after the MERGE: a crash in between leaves it stale, which only
        sends the next run the long way.

        The gate checks the changed rows, collected, and the whole clean table's row count
        and key uniqueness: from the level mark's figures and clean's MERGE commit when they
        follow from them (``_figures_after``), else computed by Spark. No run collects a
        whole table.
        """
        from pyspark.sql import functions as F

        entity = read.entity
        clean = self.table("clean", entity)
        name = self.table("curated", entity)
        source = self.spark.table(clean)
        self._ensure_table(source, name)
        table = self._iceberg_table(name)
        current = table.currentSnapshot()
        curated_snapshot = int(current.snapshotId()) if current is not None else None
        mark = table.properties().get(LEVEL_PROPERTY)
        level = Level.parse(mark)
        checked = entity in self.gate.contracts
        zone = None
        size = None
        collected = None
        outcomes_of = None
        if level is not None and level.at(clean_changes.before, curated_snapshot):
            changes, size = clean_changes.rows, clean_changes.size
            collected = clean_changes.checked
            # The same rows as the clean gate's, with the same contract: its outcomes stand.
            outcomes_of = clean_changes.gate
            if checked:
                zone = self._figures_after(read, level, clean_changes)
        else:
            changes = self._curated_diff(source, name, entity)
        if checked and zone is None:
            zone = self._zone_stats(source, entity)
        changed = changes.where(~F.col("_delete")).drop("_delete")
        self._check(
            changed,
            entity,
            "curated",
            whole_zone=True,
            zone=zone,
            collected=collected,
            outcomes_of=outcomes_of,
        )
        columns = [c for c in changes.columns if c != "_delete"]
        if self._upsert(name, changes, columns, size=size):
            curated_snapshot = self._snapshot_id(name)
        rows = zone.rows if zone is not None and zone.duplicate_keys == 0 else None
        now = Level(clean_changes.after, curated_snapshot, rows)
        if mark != now.mark:
            self.spark.sql(
                f"ALTER TABLE {name} SET TBLPROPERTIES ('{LEVEL_PROPERTY}' = '{now.mark}')"
            )
        return zone.rows if zone is not None else self.spark.table(name).count()

    def _figures_after(
        self, read: EntityRead, level: Level, changes: CleanChanges
    ) -> ZoneStats | None:
        """Clean's figures after this run's MERGE without scanning it, or None when they do
        not follow from what is known.

        They follow when the level mark gives clean's rows at the snapshot the MERGE started
        from (no key twice: the gate passed there), the contract's key is the source key the
        MERGE matches on, and the MERGE's rows have distinct keys: then no key is held twice
        after it either, and the rows are the mark's plus the rows the commit added less the
        position deletes it added (an update adds one of each, an insert a row, a delete a
        position delete). Iceberg writes one delete file per data file, folding in the
        positions of the file it replaces, so the positions it removed are added back. A
        commit that counts anything else (removed data files, equality deletes) is not a
        MERGE into a merge-on-read table, and is not counted.
        """
        contract = self.gate.contracts[read.entity]
        if level.rows is None or list(contract.key) != [read.key] or not changes.distinct_keys:
            return None
        rows = level.rows
        if changes.after != changes.before:
            table = self._iceberg_table(self.table("clean", read.entity))
            commit = table.snapshot(changes.after)
            if commit is None or commit.parentId() != changes.before:
                return None
            summary = dict(commit.summary())
            if any(int(summary.get(count, "0")) for count in _NOT_MERGE_COUNTS):
                return None
            deleted = int(summary.get("added-position-deletes", "0"))
            deleted -= int(summary.get("removed-position-deletes", "0"))
            rows += int(summary.get("added-records", "0")) - deleted
        return ZoneStats(rows=rows, duplicate_keys=0)

    def _curated_diff(self, source: DataFrame, name: str, entity: str) -> DataFrame:
        """Curated's changes against the whole clean table (``source``): new and changed
        rows, and deletions (``_delete`` true) for keys clean no longer has."""
        from pyspark.sql import functions as F

        published = self.spark.table(name)
        if "_synthetic" in published.columns:
            # Approved synthetic samples live in curated only (synth/publish.py).
            published = published.where(~F.coalesce(F.col("_synthetic"), F.lit(False)))
        gone = published.select("_source_key").join(
            source.select("_source_key"), "_source_key", "left_anti"
        )
        changes = self._changed(source, name).withColumn("_delete", F.lit(False))
        deletions = source.limit(0).unionByName(gone, allowMissingColumns=True)
        changes = changes.unionByName(deletions.withColumn("_delete", F.lit(True)))
        return self._pin(changes, entity)

    def _zone_stats(self, table: DataFrame, entity: str) -> ZoneStats | None:
        """The whole table's figures for the curated gate (None: the entity is unchecked)."""
        from pyspark.sql import functions as F

        contract = self.gate.contracts.get(entity)
        if contract is None:
            return None
        # One scan: rows per key value, then the table's rows and the keys held twice or more.
        per_key = table.groupBy(*[F.col(k) for k in contract.key]).count()
        row = per_key.agg(
            F.sum("count").alias("rows"),
            F.count(F.when(F.col("count") > 1, True)).alias("duplicate_keys"),
        ).collect()[0]
        return ZoneStats(rows=int(row["rows"] or 0), duplicate_keys=row["duplicate_keys"])


def _arrow(rows: DataFrame) -> pa.Table:
    """``rows`` collected as Arrow: exact types (no float-for-nullable-int detour through
    pandas)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    batches = rows._collect_as_arrow()
    if batches:
        return pa.Table.from_batches(batches)
    return to_arrow_schema(rows.schema).empty_table()


# The text forms of a collected row's watermark and key (``SparkBatchJob._count``): Spark's own
# casts, so a watermark counted from collected rows reads as one counted by Spark.
_MARK_TEXT = ["_steward_mark_value", "_steward_mark_key"]


def _collected_figures(
    table: pa.Table, watermark: str | None, key: str, values: tuple[str, list[str]] | None
) -> tuple[int, Watermark | None, dict[str, int]]:
    """``SparkBatchJob._count``'s figures from rows collected with their ``_MARK_TEXT``
    columns: the rows, the newest (watermark, key) among rows with a watermark value, and
    the rows holding each of ``values``."""
    import pyarrow.compute as pc

    by_value: dict[str, int] = {}
    if values is not None:
        column, wanted = values
        by_value = {value: pc.sum(pc.equal(table[column], value)).as_py() or 0 for value in wanted}
    if watermark is None:
        return table.num_rows, None, by_value
    dated = table.filter(pc.is_valid(table[watermark]))
    if dated.num_rows == 0:
        return table.num_rows, None, by_value
    newest = dated.filter(pc.equal(dated[watermark], pc.max(dated[watermark])))
    if newest[key].null_count < newest.num_rows:  # a null key is the least, as in Spark
        newest = newest.filter(pc.equal(newest[key], pc.max(newest[key])))
    value, top_key = (newest[name][0].as_py() for name in _MARK_TEXT)
    return table.num_rows, Watermark(watermark, value, top_key), by_value


def _tagged_schema(frame: DataFrame, chain: Chain) -> StructType:
    """The schema of ``frame``'s rows tagged by ``chain``, in Spark's types."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    return from_arrow_schema(chain.output_schema(to_arrow_schema(frame.schema)))


def _local_frame(spark: SparkSession, table: pa.Table, schema: StructType) -> DataFrame:
    """``table`` as a DataFrame of ``schema`` held by the driver (a local relation, up to
    ``spark.sql.execution.arrow.localRelationThreshold`` bytes), sent to the JVM as Arrow
    batches: what ``createDataFrame`` does with pandas data under Arrow, without the
    detour through pandas, which turns nullable integers into floats. (Spark 4's
    ``createDataFrame`` takes an Arrow table itself.)"""
    import pyarrow as pa
    from pyspark.sql import DataFrame
    from pyspark.sql.pandas.serializers import ArrowStreamSerializer

    jvm = spark._jvm
    assert jvm is not None
    # An empty table has no batches: it is sent as one empty batch, so the stream is not empty.
    batches = table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    jbatches = spark.sparkContext._serialize_to_jvm(
        batches,
        ArrowStreamSerializer(),
        jvm.PythonSQLUtils.readArrowStreamFromFile,
        jvm.ArrowIteratorServer,
    )
    jdf = jvm.PythonSQLUtils.toDataFrame(jbatches, schema.json(), spark._jsparkSession)
    return DataFrame(jdf, spark)


def _records_table(records: list[dict[str, Any]]) -> pa.Table:
    """JSON records as columns: every field any record has (missing: null), each column typed
    by its values, or text when they disagree (a vendor that starts sending ``"ACME-7"`` where
    numbers were). The contract then decides which values convert (``pipelines/conform.py``).
    """
    import pyarrow as pa

    names = list(dict.fromkeys(name for record in records for name in record))
    columns = {}
    for name in names:
        values = [record.get(name) for record in records]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array(
                [v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                pa.string(),
            )
    return pa.table(columns)


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """Nested values as JSON text: one flat row per record, whatever the CRM nests."""
    return {
        key: json.dumps(value, ensure_ascii=False, sort_keys=True)
        if isinstance(value, dict | list)
        else value
        for key, value in record.items()
    }


def run_batch(
    spark: SparkSession,
    config: PipelineConfig,
    config_digest: str,
    *,
    full: bool = False,
    chain_for: Callable[[str], Chain] | None = None,
) -> tuple[str, list[EntityReport]]:
    """Run the batch job under a new ledger entry; returns the run id and per-entity reports.

    ``full`` ignores the stored watermarks, re-reads every source table and removes keys that
    are gone from the source. Any failure marks the run failed in the ledger (with its
    one-line error) and propagates.
    """
    from functools import partial

    from pipelines.ledger import RunLedger
    from pipelines.transform import build_chain

    if not config.sources:
        raise ConfigError("the config names no sources: nothing for a batch run to read")
    lake = Lake(config.lake)
    ledger = RunLedger(config.lake.ledger)
    with ledger.run("batch", config_digest) as run:
        job = SparkBatchJob(
            spark, config, lake, chain_for or partial(build_chain, config), run, full=full
        )
        reports = job.execute()
    return run.run_id, reports
