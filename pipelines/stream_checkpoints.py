"""After each Flink checkpoint's Iceberg commits: row accounting, the batch-level quality gate
and the knowledge base's micro-batch, per checkpoint.

Why a follower of the commits rather than a Flink operator: the Iceberg sinks make the lake
exactly-once (their commits ride on checkpoints, ``pipelines/flink_job.py``), but an operator
that wrote to the knowledge base would write when rows pass through it, before the checkpoint
that commits them, and again after a restore replays them. So the stream job's driver follows
what the lake has *committed*: for each completed checkpoint it reads the rows the stream
tables gained, and only then counts them, checks them and loads them into the knowledge base.
What it has handled is a cursor per table (the last snapshot) in the run ledger, moved in the
same SQLite transaction that records the checkpoint's counts. A crash before that transaction
makes the next run handle the same checkpoint again: the ledger record is replaced, and the
knowledge base upsert is idempotent (point ids are UUIDv5 of source key and chunk; a chunk
whose text is unchanged is not embedded again), so nothing is lost and nothing doubles.

Which snapshots belong to one checkpoint: Iceberg's Flink committer stamps every snapshot with
``flink.job-id`` and ``flink.max-committed-checkpoint-id`` (checkpoint ids go on across a
restore), and a sink commits only at checkpoints where it received rows. Every committer
commits checkpoint c when Flink notifies it that c completed, which happens before checkpoint
c + 1 can complete (one checkpoint at a time); so once Flink has completed checkpoint M, or any
table holds a commit of it, every checkpoint below M is settled. The follower handles those
(all of them once the job has stopped with its savepoint). A committer that missed a
notification commits two checkpoints in one snapshot, labelled with the later one: the earlier
checkpoint then does not balance on its own, so it is merged with the next ones
(``_MAX_MERGED`` at most while the job runs) instead of failing. Committing an empty snapshot
in every table at every checkpoint (``flink.max-continuous-empty-commits = 1``) would mark
completeness directly, but costs nine catalog commits per checkpoint instead of two or three,
and looked several times slower in the benchmark (bench/README.md).

Per checkpoint and entity the counts are measured from the lake, not from side counters:
ingest in = raw rows + ``quarantine.ingest`` rows; the chain's input is the raw rows, its
output the clean rows, its rejects the ``quarantine.<stage>`` rows and its drops the rows of
``audit.stream_drops`` (keys and rule only). A row lost between raw and clean fails the
balance (``AccountingError``, exit 7).

What "block" means for a stream: its tables only append, so rows that fail the batch gate are
already committed in ``clean.<entity>`` and stay there (nothing is lost). The gate's failure
is recorded (ledger and ``steward quality report``); the checkpoint is not loaded into the
knowledge base, the cursors stay before it and the run stops with ``QualityGateFailed``
(exit 6). The next run checks the same checkpoint first, so the knowledge base receives
nothing newer until the contract or the data is fixed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.chain import stage_counts
from pipelines.errors import ConfigError, QualityGateFailed
from pipelines.ledger import RunRecord, StageCounts

if TYPE_CHECKING:
    from pyiceberg.table import Table
    from pyiceberg.table.snapshots import Snapshot

    from index.config import KnowledgeBaseConfig
    from index.embed import Embedder
    from index.loader import KnowledgeBaseLoader, LoadReport
    from index.stores.base import VectorStore
    from pipelines.lake import Lake
    from pipelines.quality import QualityGate, QualityResult

logger = logging.getLogger(__name__)

JOB_ID = "flink.job-id"
CHECKPOINT_ID = "flink.max-committed-checkpoint-id"
# While the job runs, a checkpoint that does not balance on its own is merged with at most this
# many following ones (a committer that missed a notification) before it fails the run.
_MAX_MERGED = 5
INGEST_STAGE = "ingest"
DROPS_TABLE = "audit.stream_drops"
QUALITY_GATE = "clean"


@dataclass(frozen=True)
class StreamTables:
    """The stream job's sinks by role (``namespace.name``)."""

    raw: Mapping[str, Sequence[str]]  # entity → its raw tables (one per source)
    clean: Mapping[str, str]  # entity → clean table
    quarantine: Mapping[str, str]  # stage (ingest included) → quarantine table
    stage_names: Mapping[str, Sequence[str]]  # entity → its chain's stages
    drops: str = DROPS_TABLE

    @property
    def names(self) -> list[str]:
        raw = [name for names in self.raw.values() for name in names]
        return [*raw, *self.clean.values(), *self.quarantine.values(), self.drops]


@dataclass(frozen=True)
class CheckpointCommits:
    """The snapshots each stream table committed for one checkpoint (or a run of checkpoints
    some committer merged), and where each table's cursor goes once they are handled."""

    job_id: str
    checkpoint_id: int
    snapshots: Mapping[str, tuple[Snapshot, ...]]
    cursors: Mapping[str, tuple[int, int]]


def checkpoint_key(snapshot: Snapshot) -> tuple[str, int] | None:
    """(Flink job id, checkpoint id) of a stream commit; ``None`` for any other snapshot."""
    props = snapshot.summary.additional_properties if snapshot.summary else {}
    if JOB_ID not in props or CHECKPOINT_ID not in props:
        return None  # not a stream commit (maintenance, a manual fix)
    return str(props[JOB_ID]), int(props[CHECKPOINT_ID])


def new_snapshots(table: Table, cursor: tuple[int, int] | None) -> list[Snapshot]:
    """The current snapshot's ancestors after ``cursor`` (snapshot id, sequence number),
    oldest first. The sequence number still orders them when the cursor's own snapshot has
    been expired."""
    snapshots: list[Snapshot] = []
    snapshot = table.current_snapshot()
    while snapshot is not None:
        if cursor is not None and (
            snapshot.snapshot_id == cursor[0] or (snapshot.sequence_number or 0) <= cursor[1]
        ):
            break
        snapshots.append(snapshot)
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return snapshots[::-1]


def checkpoint_groups(
    pending: Mapping[str, Sequence[Snapshot]], *, completed: int = 0, final: bool = False
) -> list[CheckpointCommits]:
    """Each table's new snapshots grouped by the checkpoint they committed, oldest first: the
    checkpoints below the newest one that any table has committed or that Flink has completed
    (``completed``), or, once the job has stopped (``final``), all of them. A snapshot that
    is not a stream commit goes with the checkpoint of the stream commit before it."""
    stamped = {key[1] for snaps in pending.values() for s in snaps if (key := checkpoint_key(s))}
    newest = max(stamped, default=0)
    limit = newest if final else max(newest, completed) - 1
    position = dict.fromkeys(pending, 0)
    groups: list[CheckpointCommits] = []
    for checkpoint in sorted(c for c in stamped if c <= limit):
        taken: dict[str, tuple[Snapshot, ...]] = {}
        for name, snaps in pending.items():
            end = position[name]
            while end < len(snaps) and (
                (key := checkpoint_key(snaps[end])) is None or key[1] <= checkpoint
            ):
                end += 1
            taken[name] = tuple(snaps[position[name] : end])
            position[name] = end
        groups.append(_group(checkpoint, taken))
    if final and any(position[name] < len(snaps) for name, snaps in pending.items()):
        rest = {name: tuple(snaps[position[name] :]) for name, snaps in pending.items()}
        groups.append(_group(limit, rest))
    return groups


def _group(checkpoint: int, snapshots: Mapping[str, tuple[Snapshot, ...]]) -> CheckpointCommits:
    jobs = [key[0] for snaps in snapshots.values() for s in snaps if (key := checkpoint_key(s))]
    cursors = {
        name: (snaps[-1].snapshot_id, snaps[-1].sequence_number or 0)
        for name, snaps in snapshots.items()
        if snaps
    }
    return CheckpointCommits(jobs[-1] if jobs else "", checkpoint, dict(snapshots), cursors)


def merged(first: CheckpointCommits, then: CheckpointCommits) -> CheckpointCommits:
    """Two consecutive groups as one (under the later checkpoint)."""
    names = [*first.snapshots, *(n for n in then.snapshots if n not in first.snapshots)]
    return CheckpointCommits(
        then.job_id or first.job_id,
        then.checkpoint_id,
        {n: (*first.snapshots.get(n, ()), *then.snapshots.get(n, ())) for n in names},
        {**first.cursors, **then.cursors},
    )


def _appends(snapshots: Iterable[Snapshot]) -> list[Snapshot]:
    """The stream's own appends among ``snapshots``."""
    from pyiceberg.table.snapshots import Operation

    return [
        s
        for s in snapshots
        if s.summary is not None and s.summary.operation == Operation.APPEND and checkpoint_key(s)
    ]


def added_records(snapshots: Iterable[Snapshot]) -> int:
    """Rows the stream appended in these snapshots (their ``added-records`` summaries)."""
    return sum(
        int(s.summary.additional_properties.get("added-records", 0))  # type: ignore[union-attr]
        for s in _appends(snapshots)
    )


def added_rows(table: Table, snapshots: Iterable[Snapshot], columns: Sequence[str]) -> pa.Table:
    """The rows the stream appended in these snapshots: the data files each one added (stream
    tables only append, so no delete file applies to them)."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan
    from pyiceberg.manifest import ManifestContent, ManifestEntryStatus
    from pyiceberg.table import FileScanTask

    tasks = []
    for snapshot in _appends(snapshots):
        for manifest in snapshot.manifests(table.io):
            if (
                manifest.content != ManifestContent.DATA
                or manifest.added_snapshot_id != snapshot.snapshot_id
            ):
                continue
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                if (
                    entry.status == ManifestEntryStatus.ADDED
                    and entry.snapshot_id == snapshot.snapshot_id
                ):
                    tasks.append(FileScanTask(entry.data_file))
    scan = ArrowScan(table.metadata, table.io, table.schema().select(*columns), AlwaysTrue())
    return scan.to_table(tasks)


def _tally(rows: pa.Table, keys: Sequence[str]) -> list[dict[str, Any]]:
    if not rows.num_rows:
        return []
    grouped = rows.group_by(list(keys), use_threads=False).aggregate([([], "count_all")])
    return [{**{k: row[k] for k in keys}, "count": row["count_all"]} for row in grouped.to_pylist()]


# -- the follower ------------------------------------------------------------------------------


@dataclass
class CheckpointSummary:
    """What one followed checkpoint committed and what was done with it."""

    job_id: str
    checkpoint_id: int
    rows: dict[str, int]
    quality: str
    knowledge_base: dict[str, dict[str, Any]] = field(default_factory=dict)


class KnowledgeBaseFeed:
    """Upserts the clean rows of each checkpoint into the knowledge-base datasets that read a
    stream clean table (``kb.datasets.<name>.table: clean.<entity>``), with the loader's
    incremental ``sync(complete=False)``: only the rows' own points are reconciled."""

    def __init__(
        self,
        kb: KnowledgeBaseConfig,
        clean_tables: Iterable[str],
        embedder: Embedder | Callable[[], Embedder],
    ):
        self.kb = kb
        tables = set(clean_tables)
        self.datasets: dict[str, list[str]] = {}
        for name, spec in kb.datasets.items():
            if spec.table_name(name) in tables:
                self.datasets.setdefault(spec.table_name(name), []).append(name)
        self._embedder = embedder
        self._loader: KnowledgeBaseLoader | None = None
        self._store: VectorStore | None = None
        self.reports: dict[str, LoadReport] = {}

    def loader(self) -> KnowledgeBaseLoader:
        """Opened on first use: the model loads only once there are rows to embed."""
        if self._loader is None:
            from index.loader import KnowledgeBaseLoader
            from index.stores import open_store

            given = self._embedder
            embedder = given if hasattr(given, "embed") else given()  # type: ignore[operator]
            self._store = open_store(self.kb)
            self._loader = KnowledgeBaseLoader(self.kb, embedder, self._store)
        return self._loader

    def columns(self, dataset: str, table: Table) -> list[str]:
        """Lineage, text and tag columns, as ``index.source.read_dataset`` reads them."""
        from index.source import lineage_columns

        spec = self.kb.datasets[dataset]
        present = [f.name for f in table.schema().fields]
        wanted = {"_source_key", *spec.fields, *spec.tag_columns().values()}
        if missing := sorted(wanted - set(present)):
            raise ConfigError(
                f"kb.datasets.{dataset}: table {spec.table_name(dataset)} has no columns"
                f" {missing} (it has: {', '.join(present)})"
            )
        return [
            *lineage_columns(present),
            *(c for c in present if c in wanted and not c.startswith("_")),
        ]

    def load(self, name: str, table: Table, snapshots: Sequence[Snapshot]) -> dict[str, Any]:
        """Load the rows these snapshots added to ``name`` into its datasets."""
        done: dict[str, Any] = {}
        for dataset in self.datasets.get(name, []):
            rows = added_rows(table, snapshots, self.columns(dataset, table))
            if not rows.num_rows:
                continue
            report = self.loader().sync(dataset, [rows], complete=False)
            total = self.reports.get(dataset)
            self.reports[dataset] = report if total is None else _add_reports(total, report)
            done[dataset] = {
                "rows": report.rows,
                "upserted": report.upserted,
                "embedded": report.embedded,
                "unchanged": report.unchanged,
                "seconds": round(sum(report.seconds.values()), 2),
            }
        return done

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._loader = None


def _add_reports(total: LoadReport, more: LoadReport) -> LoadReport:
    seconds = dict(total.seconds)
    for phase, value in more.seconds.items():
        seconds[phase] = seconds.get(phase, 0.0) + value
    return replace(
        total,
        rows=total.rows + more.rows,
        chunks=total.chunks + more.chunks,
        embedded=total.embedded + more.embedded,
        upserted=total.upserted + more.upserted,
        payload_updated=total.payload_updated + more.payload_updated,
        unchanged=total.unchanged + more.unchanged,
        deleted=total.deleted + more.deleted,
        seconds=seconds,
    )


class CheckpointFollower:
    """Handles the stream's committed checkpoints in order (module docstring)."""

    def __init__(
        self,
        lake: Lake,
        tables: StreamTables,
        run: RunRecord,
        *,
        gate: QualityGate | None = None,
        knowledge_base: KnowledgeBaseFeed | None = None,
        completed: Callable[[], int] | None = None,
    ):
        self.lake = lake
        self.completed = completed
        self.tables = tables
        self.run = run
        self.gate = gate
        self.knowledge_base = knowledge_base
        self.checkpoints: list[CheckpointSummary] = []
        self.table_rows: dict[str, int] = dict.fromkeys(tables.names, 0)
        self._totals: dict[tuple[str, str], StageCounts] = {}
        self._quality: dict[str, QualityResult] = {}

    # -- reading the lake -------------------------------------------------------------------

    def _load(self) -> dict[str, Table]:
        return {name: self.lake.table(name) for name in self.tables.names}

    def poll(self, *, final: bool = False) -> list[CheckpointSummary]:
        """Handle every settled checkpoint since the cursors (all of them with ``final``,
        once the job has stopped). Raises ``AccountingError`` or ``QualityGateFailed`` on the
        first checkpoint that fails, after recording it."""
        tables = self._load()
        cursors = self.run.ledger.stream_cursors()
        pending = {name: new_snapshots(t, cursors.get(name)) for name, t in tables.items()}
        completed = self.completed() if self.completed is not None else 0
        groups = checkpoint_groups(pending, completed=completed, final=final)
        done = []
        start = 0
        while start < len(groups):
            end = start
            commits = groups[start]
            rows, counts = self._measure(tables, commits)
            while not _balanced(counts) and end + 1 < len(groups):
                if not final and end - start >= _MAX_MERGED:
                    break
                end += 1
                commits = merged(commits, groups[end])
                rows, counts = self._measure(tables, commits)
            if not _balanced(counts) and not final and end - start < _MAX_MERGED:
                break  # a committer may still be on its way: look again at the next poll
            done.append(self._handle(tables, commits, rows, counts))
            start = end + 1
        return done

    # -- one checkpoint ---------------------------------------------------------------------

    def _measure(
        self, tables: Mapping[str, Table], commits: CheckpointCommits
    ) -> tuple[dict[str, int], list[StageCounts]]:
        rows = {name: added_records(snaps) for name, snaps in commits.snapshots.items()}
        if not any(rows.values()):
            return rows, []
        return rows, self._counts(tables, commits, rows)

    def _handle(
        self,
        tables: Mapping[str, Table],
        commits: CheckpointCommits,
        rows: Mapping[str, int],
        counts: list[StageCounts],
    ) -> CheckpointSummary:
        summary = CheckpointSummary(
            commits.job_id, commits.checkpoint_id, {k: v for k, v in rows.items() if v}, "empty"
        )
        if not summary.rows:
            # Nothing committed (an idle checkpoint): move the cursors, record nothing.
            self.run.move_cursors(commits.cursors)
            return summary
        details: dict[str, Any] = {
            "rows": summary.rows,
            "snapshots": {
                name: [s.snapshot_id for s in snaps]
                for name, snaps in commits.snapshots.items()
                if rows.get(name)
            },
        }
        if not _balanced(counts):
            # Recorded as measured, then AccountingError: the cursors stay before it.
            self.run.record_checkpoint(
                commits.job_id,
                commits.checkpoint_id,
                counts,
                quality="not checked",
                details=details,
                cursors={},
            )
        failed = self._check(tables, commits, rows)
        summary.quality = "failed: " + failed if failed else "passed"
        if failed:
            self.run.record_checkpoint(
                commits.job_id,
                commits.checkpoint_id,
                counts,
                quality=summary.quality,
                details=details,
                cursors={},
            )
            raise QualityGateFailed(
                f"checkpoint {commits.checkpoint_id} of job {commits.job_id}: {failed}; its"
                " rows stay in the lake and are not loaded into the knowledge base",
                stage=f"quality.{QUALITY_GATE}",
                run_id=self.run.run_id,
            )
        if self.knowledge_base is not None:
            for name in self.knowledge_base.datasets:
                if rows.get(name):
                    loaded = self.knowledge_base.load(name, tables[name], commits.snapshots[name])
                    summary.knowledge_base.update(loaded)
            details["knowledge_base"] = summary.knowledge_base
        self.run.record_checkpoint(
            commits.job_id,
            commits.checkpoint_id,
            counts,
            quality=summary.quality,
            details=details,
            cursors=commits.cursors,
        )
        for name, snaps in commits.snapshots.items():
            self.table_rows[name] = self.table_rows.get(name, 0) + rows[name]
            for snapshot in _appends(snaps):
                if added_records([snapshot]):
                    self.run.record_commit(
                        f"{self.lake.catalog_name}.{name}", snapshot.snapshot_id, "append"
                    )
        for c in counts:
            self._add_total(c)
        self.checkpoints.append(summary)
        logger.info(
            "checkpoint %s of job %s: %s", commits.checkpoint_id, commits.job_id, summary.rows
        )
        return summary

    def _counts(
        self, tables: Mapping[str, Table], commits: CheckpointCommits, rows: Mapping[str, int]
    ) -> list[StageCounts]:
        """Per entity: the ingest stage, then each chain stage, measured from the lake."""

        def read(name: str, columns: Sequence[str]) -> pa.Table:
            if not rows.get(name):
                return pa.table({c: pa.array([], pa.string()) for c in columns})
            return added_rows(tables[name], commits.snapshots[name], columns)

        rejected = {
            stage: _tally(read(name, ["_entity", "_rule_id"]), ["_entity", "_rule_id"])
            for stage, name in self.tables.quarantine.items()
        }
        drops = _tally(
            read(self.tables.drops, ["_entity", "_stage", "_rule_id"]),
            ["_entity", "_stage", "_rule_id"],
        )
        counts: list[StageCounts] = []
        for entity, raw_tables in self.tables.raw.items():
            raw = sum(rows.get(name, 0) for name in raw_tables)
            kept = rows.get(self.tables.clean[entity], 0)
            ingest = [g for g in rejected.get(INGEST_STAGE, []) if g["_entity"] == entity]
            groups = [g for part in (*rejected.values(), drops) for g in part]
            if not raw and not kept and not any(g["_entity"] == entity for g in groups):
                continue
            quarantined = sum(g["count"] for g in ingest)
            counts.append(
                StageCounts(
                    stage=INGEST_STAGE,
                    entity=entity,
                    rows_in=raw + quarantined,
                    rows_out=raw,
                    quarantined=quarantined,
                    reasons={f"quarantine:{g['_rule_id']}": g["count"] for g in ingest},
                )
            )
            tallies = [
                (stage, "quarantine", g["_rule_id"], g["count"])
                for stage, groups in rejected.items()
                if stage != INGEST_STAGE
                for g in groups
                if g["_entity"] == entity
            ]
            tallies += [
                (g["_stage"], "drop", g["_rule_id"], g["count"])
                for g in drops
                if g["_entity"] == entity
            ]
            tallies.append((None, "keep", None, kept))
            counts.extend(stage_counts(entity, self.tables.stage_names[entity], raw, tallies))
        return counts

    def _check(
        self, tables: Mapping[str, Table], commits: CheckpointCommits, rows: Mapping[str, int]
    ) -> str | None:
        """The batch-level gate on each entity's new clean rows; the failed checks, if any.

        The same checks as the batch job's clean gate on an incremental batch (schema,
        columns, key uniqueness within the batch, the steward's batch expectations; no row
        count comparison, since a checkpoint is not the whole table). The result of every
        checkpoint of the run is merged into one summary per entity, which is what
        ``steward quality report`` shows for the run.
        """
        if self.gate is None:
            return None
        from pipelines.quality import check_batch, failure_details

        failures = []
        for entity, name in self.tables.clean.items():
            if not rows.get(name):
                continue
            contract = self.gate.contracts.get(entity)
            if contract is None:
                if self.gate.config.require_contracts:
                    failures.append(f"{entity}: no contract")
                continue
            table = tables[name]
            data = added_rows(table, commits.snapshots[name], table.schema().column_names)
            result = check_batch(
                data,
                contract,
                gate=QUALITY_GATE,
                run_id=self.run.run_id,
                config=self.gate.config,
            )
            merged = _merge_results(self._quality.get(entity), result)
            self._quality[entity] = merged
            self.gate.reports.write(merged)
            if not result.passed:
                failed = ", ".join(failure_details(result))
                failures.append(f"{entity} failed at gate {QUALITY_GATE}: {failed}")
        return "; ".join(failures) or None

    # -- the run's totals -------------------------------------------------------------------

    def _add_total(self, counts: StageCounts) -> None:
        key = (counts.entity, counts.stage)
        total = self._totals.get(key)
        if total is None:
            self._totals[key] = counts
            return
        reasons = dict(total.reasons)
        for reason, n in counts.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
        self._totals[key] = replace(
            total,
            rows_in=total.rows_in + counts.rows_in,
            rows_out=total.rows_out + counts.rows_out,
            quarantined=total.quarantined + counts.quarantined,
            dropped=total.dropped + counts.dropped,
            reasons=dict(sorted(reasons.items())),
        )

    def totals(self) -> list[StageCounts]:
        """This run's counts per entity and stage: the sum of its checkpoints'."""
        return list(self._totals.values())


def _balanced(counts: Iterable[StageCounts]) -> bool:
    return all(c.balanced for c in counts)


def _merge_results(previous: QualityResult | None, current: QualityResult) -> QualityResult:
    """One run's summary for an entity: rows added up, a check passes only if it passed on
    every checkpoint, unexpected rows added up."""
    if previous is None:
        return current
    before = {c.name: c for c in previous.checks}
    checks = []
    for check in current.checks:
        old = before.pop(check.name, None)
        if old is None:
            checks.append(check)
            continue
        unexpected = (
            None
            if old.unexpected_count is None and check.unexpected_count is None
            else (old.unexpected_count or 0) + (check.unexpected_count or 0)
        )
        checks.append(
            replace(
                check,
                success=old.success and check.success,
                unexpected_count=unexpected,
                unexpected_percent=None,
                error=old.error or check.error,
            )
        )
    checks.extend(before.values())
    return replace(current, rows=previous.rows + current.rows, checks=tuple(checks))


__all__ = [
    "DROPS_TABLE",
    "CheckpointCommits",
    "CheckpointFollower",
    "CheckpointSummary",
    "KnowledgeBaseFeed",
    "StreamTables",
    "added_records",
    "added_rows",
    "checkpoint_groups",
    "merged",
    "new_snapshots",
]
