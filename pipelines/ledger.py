"""The run ledger: one row per run, its per-stage row accounting and the commits it made.
Stream runs also record each followed Flink checkpoint (its per-stage counts and quality
verdict) and the follower's cursor per table.

A SQLite file beside the lake (``lake/ledger.db``) so that a scheduler, ``steward runs`` and
an auditor read it without a JVM. Each stage's counts must balance
(rows in = rows out + quarantined + dropped); a stage that does not balance is recorded as it
was measured and then fails the run with ``AccountingError``.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import AccountingError, LakeError, StewardError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT
);
CREATE TABLE IF NOT EXISTS stage_counts (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    seq INTEGER NOT NULL,
    stage TEXT NOT NULL,
    entity TEXT NOT NULL,
    rows_in INTEGER NOT NULL,
    rows_out INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    duration_s REAL NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS warnings (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    message TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS commits (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    table_name TEXT NOT NULL,
    snapshot_id INTEGER,
    operation TEXT NOT NULL,
    committed_at TEXT NOT NULL
);
-- The stream's commits, one row per Flink checkpoint whose Iceberg commits were followed
-- (pipelines/stream_checkpoints.py): its quality verdict and what it wrote.
CREATE TABLE IF NOT EXISTS checkpoints (
    job_id TEXT NOT NULL,
    checkpoint_id INTEGER NOT NULL,
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    recorded_at TEXT NOT NULL,
    quality TEXT NOT NULL,
    details TEXT NOT NULL,
    PRIMARY KEY (job_id, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS checkpoint_counts (
    job_id TEXT NOT NULL,
    checkpoint_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    stage TEXT NOT NULL,
    entity TEXT NOT NULL,
    rows_in INTEGER NOT NULL,
    rows_out INTEGER NOT NULL,
    quarantined INTEGER NOT NULL,
    dropped INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    PRIMARY KEY (job_id, checkpoint_id, seq)
);
-- How far the stream's follower has read each table (the newest snapshot it has handled).
CREATE TABLE IF NOT EXISTS stream_cursors (
    table_name TEXT PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    sequence_number INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""


def new_run_id() -> str:
    """A sortable, unique run id: UTC time then a random suffix."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class StageCounts:
    """What one stage did to one entity's rows in one run.

    ``quarantined`` and ``dropped`` are broken down in ``reasons`` as
    ``{"quarantine:<rule or check>": n, "drop:<rule>": n}``.
    """

    stage: str
    entity: str
    rows_in: int
    rows_out: int
    quarantined: int = 0
    dropped: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.quarantined + self.dropped

    def describe_imbalance(self) -> str:
        return (
            f"stage {self.stage} on {self.entity}: rows in {self.rows_in} != out {self.rows_out}"
            f" + quarantined {self.quarantined} + dropped {self.dropped}"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunLedger:
    """Open (and create) the ledger file; every method opens a short transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
                db.row_factory = sqlite3.Row
                yield db
        except sqlite3.DatabaseError as exc:
            raise LakeError(f"run ledger {self.path}: {exc}") from None

    @contextmanager
    def run(self, kind: str, config_hash: str, run_id: str | None = None) -> Iterator[RunRecord]:
        """Record a run from start to finish; an exception marks it failed and propagates."""
        record = RunRecord(self, run_id or new_run_id())
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (run_id, kind, config_hash, started_at, status)"
                " VALUES (?, ?, ?, ?, 'running')",
                (record.run_id, kind, config_hash, _now()),
            )
        try:
            yield record
        except BaseException as exc:
            code = exc.exit_code if isinstance(exc, StewardError) else 1
            message = exc.one_line() if isinstance(exc, StewardError) else repr(exc)
            self._finish(record.run_id, "failed", int(code), message)
            raise
        self._finish(record.run_id, "succeeded", 0, None)

    def _finish(self, run_id: str, status: str, exit_code: int, error: str | None) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, error = ?"
                " WHERE run_id = ?",
                (_now(), status, exit_code, error, run_id),
            )

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [dict(row) for row in rows]

    def show_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row with its ``stages``, ``commits`` and ``warnings``; None if unknown."""
        with self._connect() as db:
            run = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if run is None:
                return None
            stages = db.execute(
                "SELECT * FROM stage_counts WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
            commits = db.execute(
                "SELECT table_name, snapshot_id, operation, committed_at FROM commits"
                " WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            ).fetchall()
            warnings = db.execute(
                "SELECT message FROM warnings WHERE run_id = ? ORDER BY rowid", (run_id,)
            ).fetchall()
        result = dict(run)
        result["stages"] = [{**dict(row), "reasons": json.loads(row["reasons"])} for row in stages]
        result["commits"] = [dict(row) for row in commits]
        result["warnings"] = [row["message"] for row in warnings]
        result["checkpoints"] = self.checkpoints(run_id)
        return result

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        """The stream checkpoints a run recorded, oldest first, each with its ``stages``."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM checkpoints WHERE run_id = ? ORDER BY recorded_at, checkpoint_id",
                (run_id,),
            ).fetchall()
            result = []
            for row in rows:
                stages = db.execute(
                    "SELECT stage, entity, rows_in, rows_out, quarantined, dropped, reasons"
                    " FROM checkpoint_counts WHERE job_id = ? AND checkpoint_id = ? ORDER BY seq",
                    (row["job_id"], row["checkpoint_id"]),
                ).fetchall()
                result.append(
                    {
                        **dict(row),
                        "details": json.loads(row["details"]),
                        "stages": [
                            {**dict(s), "reasons": json.loads(s["reasons"])} for s in stages
                        ],
                    }
                )
        return result

    def stream_cursors(self) -> dict[str, tuple[int, int]]:
        """Per table, the (snapshot id, sequence number) the stream's follower handled last."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT table_name, snapshot_id, sequence_number FROM stream_cursors"
            ).fetchall()
        return {r["table_name"]: (r["snapshot_id"], r["sequence_number"]) for r in rows}


class RunRecord:
    """The handle a running job writes its counts and commits through."""

    def __init__(self, ledger: RunLedger, run_id: str):
        self.ledger = ledger
        self.run_id = run_id
        self._seq = itertools.count(1)  # next() is atomic: entities record from threads

    def record_stage(self, counts: StageCounts) -> None:
        """Store the counts, then fail the run if they do not balance."""
        seq = next(self._seq)
        with self.ledger._connect() as db:
            db.execute(
                "INSERT INTO stage_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.run_id,
                    seq,
                    counts.stage,
                    counts.entity,
                    counts.rows_in,
                    counts.rows_out,
                    counts.quarantined,
                    counts.dropped,
                    json.dumps(dict(counts.reasons), sort_keys=True),
                    round(counts.duration_s, 3),
                ),
            )
        if not counts.balanced:
            raise AccountingError(
                counts.describe_imbalance(), stage=counts.stage, run_id=self.run_id
            )

    def record_warning(self, message: str) -> None:
        """Something a person should know that did not stop the run (a new source column)."""
        with self.ledger._connect() as db:
            db.execute("INSERT INTO warnings VALUES (?, ?, ?)", (self.run_id, message, _now()))

    def record_commit(self, table: str, snapshot_id: int | None, operation: str) -> None:
        with self.ledger._connect() as db:
            db.execute(
                "INSERT INTO commits VALUES (?, ?, ?, ?, ?)",
                (self.run_id, table, snapshot_id, operation, _now()),
            )

    def record_checkpoint(
        self,
        job_id: str,
        checkpoint_id: int,
        counts: list[StageCounts],
        *,
        quality: str,
        details: Mapping[str, Any],
        cursors: Mapping[str, tuple[int, int]],
    ) -> None:
        """Store one stream checkpoint's counts and verdict and, when every stage balances,
        move the follower's cursors past it, in one transaction; then fail the run if a stage
        does not balance (the cursors stay, so the next run meets the same checkpoint again).

        Recording the same checkpoint again (a follower that re-reads it after a crash)
        replaces the earlier record.
        """
        unbalanced = [c for c in counts if not c.balanced]
        with self.ledger._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    checkpoint_id,
                    self.run_id,
                    _now(),
                    quality,
                    json.dumps(dict(details), sort_keys=True),
                ),
            )
            db.execute(
                "DELETE FROM checkpoint_counts WHERE job_id = ? AND checkpoint_id = ?",
                (job_id, checkpoint_id),
            )
            db.executemany(
                "INSERT INTO checkpoint_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        checkpoint_id,
                        seq,
                        c.stage,
                        c.entity,
                        c.rows_in,
                        c.rows_out,
                        c.quarantined,
                        c.dropped,
                        json.dumps(dict(c.reasons), sort_keys=True),
                    )
                    for seq, c in enumerate(counts, 1)
                ],
            )
            if not unbalanced:
                db.executemany(
                    "INSERT OR REPLACE INTO stream_cursors VALUES (?, ?, ?, ?)",
                    [(table, snap, seq, _now()) for table, (snap, seq) in cursors.items()],
                )
        if unbalanced:
            raise AccountingError(
                f"checkpoint {checkpoint_id} of job {job_id}: {unbalanced[0].describe_imbalance()}",
                stage=unbalanced[0].stage,
                run_id=self.run_id,
            )

    def move_cursors(self, cursors: Mapping[str, tuple[int, int]]) -> None:
        """Move the stream follower's cursors past checkpoints that committed no rows."""
        with self.ledger._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO stream_cursors VALUES (?, ?, ?, ?)",
                [(table, snap, seq, _now()) for table, (snap, seq) in cursors.items()],
            )
