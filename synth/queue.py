"""The review queue in the lake: ``synth.review_queue`` and ``synth.review_decisions``.

Both tables only ever receive appends. A sample is written once (its id is a hash of its
content, so a re-run cannot queue it twice); every decision about it, by a person or by the
auto-approver, is a new row with who, when and why. A sample's status is its latest
decision (``pending`` when there is none), so the table is also the audit trail: a sample
approved, then rejected, then approved again shows all three decisions. Appends need no
row-level delete, which pyiceberg 0.8 cannot do cheaply, and two reviewers deciding at once
cannot overwrite each other: both decisions are kept, the later wins.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from pipelines.errors import ConfigError, LakeError

if TYPE_CHECKING:
    from pipelines.lake import Lake

NAMESPACE = "synth"
QUEUE_TABLE = f"{NAMESPACE}.review_queue"
DECISIONS_TABLE = f"{NAMESPACE}.review_decisions"

Status = Literal["pending", "approved", "rejected"]
Decision = Literal["approved", "rejected"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "rejected")

_TS = pa.timestamp("us", tz="UTC")
QUEUE_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("record", pa.string(), nullable=False),  # JSON object: the sample's fields
        pa.field("seed_keys", pa.list_(pa.string())),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("generator_params", pa.string(), nullable=False),  # JSON
        pa.field("flags", pa.list_(pa.string())),
        pa.field("spot_check", pa.bool_()),
        pa.field("nearest_real", pa.float64()),
        pa.field("label_margin", pa.float64()),
        pa.field("run_id", pa.string()),
        pa.field("created_at", _TS),
    ]
)
DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("decision", pa.string(), nullable=False),
        pa.field("reviewer", pa.string(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("auto", pa.bool_()),
        pa.field("decided_at", _TS),
        pa.field("run_id", pa.string()),
    ]
)


@dataclass(frozen=True)
class QueuedSample:
    sample_id: str
    task: str
    dataset: str
    label: str
    text: str | None
    record: dict[str, Any]
    seed_keys: list[str]
    generator: str
    generator_params: dict[str, Any]
    flags: list[str]
    spot_check: bool
    nearest_real: float | None
    label_margin: float | None
    run_id: str | None
    created_at: datetime
    status: Status = "pending"
    reviewer: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None

    def to_json(self, full: bool = False) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if full or k not in _DETAIL_ONLY}
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


_DETAIL_ONLY = frozenset({"record", "generator_params", "dataset", "run_id"})


@dataclass(frozen=True)
class Selection:
    """Which samples a review command acts on: explicit ids, or a filter."""

    ids: tuple[str, ...] = ()
    task: str | None = None
    label: str | None = None
    status: Status | None = "pending"
    flag: str | None = None
    unflagged: bool = False
    spot_check: bool | None = None

    def matches(self, sample: QueuedSample) -> bool:
        return (
            (not self.ids or sample.sample_id in self.ids)
            and (self.task is None or sample.task == self.task)
            and (self.label is None or sample.label == self.label)
            and (self.status is None or sample.status == self.status)
            and (self.flag is None or self.flag in sample.flags)
            and (not self.unflagged or not sample.flags)
            and (self.spot_check is None or sample.spot_check == self.spot_check)
        )


class ReviewQueue:
    """The two tables behind ``steward synth review``."""

    def __init__(self, lake: Lake):
        self.lake = lake

    def ensure(self) -> None:
        """Create the namespace and tables if missing (idempotent)."""
        catalog = self.lake.catalog
        try:
            catalog.create_namespace_if_not_exists(NAMESPACE)
            catalog.create_table_if_not_exists(QUEUE_TABLE, schema=QUEUE_SCHEMA)
            catalog.create_table_if_not_exists(DECISIONS_TABLE, schema=DECISIONS_SCHEMA)
        except Exception as exc:
            raise LakeError(f"review queue: cannot create tables: {exc}") from None

    def _exists(self) -> bool:
        return QUEUE_TABLE in self.lake.tables()

    # -- writing ------------------------------------------------------------------------------

    def add(self, rows: Sequence[dict[str, Any]], run_id: str) -> int | None:
        """Append new samples (rows of ``QUEUE_SCHEMA``; ids already queued are skipped).
        Returns the snapshot id, or None when nothing was new."""
        self.ensure()
        known = {s.sample_id for s in self._raw_samples()}
        fresh = [r for r in rows if r["sample_id"] not in known]
        if not fresh:
            return None
        return self._append(QUEUE_TABLE, pa.Table.from_pylist(fresh, QUEUE_SCHEMA), run_id)

    def decide(
        self,
        sample_ids: Iterable[str],
        decision: Decision,
        *,
        reviewer: str,
        reason: str | None,
        auto: bool = False,
        run_id: str | None = None,
    ) -> int:
        """Record one decision per sample, in one commit; the number recorded."""
        if not reviewer.strip():
            raise ConfigError("a decision needs a reviewer name")
        ids = list(dict.fromkeys(sample_ids))
        if not ids:
            return 0
        samples = {s.sample_id: s for s in self._raw_samples()}
        unknown = [i for i in ids if i not in samples]
        if unknown:
            raise ConfigError(f"no queued sample {', '.join(unknown[:5])}")
        now = datetime.now(UTC)
        rows = [
            {
                "sample_id": i,
                "task": samples[i].task,
                "decision": decision,
                "reviewer": reviewer,
                "reason": reason,
                "auto": auto,
                "decided_at": now,
                "run_id": run_id,
            }
            for i in ids
        ]
        self._append(DECISIONS_TABLE, pa.Table.from_pylist(rows, DECISIONS_SCHEMA), run_id)
        return len(rows)

    def _append(self, name: str, data: pa.Table, run_id: str | None) -> int | None:
        from pyiceberg.exceptions import CommitFailedException

        table = self.lake.table(name)
        properties = {"steward.run-id": run_id} if run_id else {}
        try:
            table.append(data, snapshot_properties=properties)
        except CommitFailedException as exc:
            raise LakeError(f"{name}: concurrent commit, retry: {exc}", transient=True) from None
        snapshot = table.current_snapshot()
        return snapshot.snapshot_id if snapshot else None

    # -- reading ------------------------------------------------------------------------------

    def samples(self, selection: Selection | None = None) -> list[QueuedSample]:
        """Samples with their current status, oldest first, filtered by ``selection``."""
        if not self._exists():
            return []
        task = selection.task if selection is not None else None
        latest = self._latest_decisions(task)
        result = []
        for sample in self._raw_samples(task):
            decision = latest.get(sample.sample_id)
            if decision is not None:
                sample = QueuedSample(
                    **{
                        **sample.__dict__,
                        "status": decision["decision"],
                        "reviewer": decision["reviewer"],
                        "reason": decision["reason"],
                        "decided_at": decision["decided_at"],
                    }
                )
            if selection is None or selection.matches(sample):
                result.append(sample)
        return result

    def get(self, sample_id: str) -> tuple[QueuedSample, list[dict[str, Any]]]:
        """One sample and its decision history, oldest first."""
        found = self.samples(Selection(ids=(sample_id,), status=None))
        if not found:
            raise ConfigError(f"no queued sample {sample_id}")
        history = sorted(
            (d for d in self._decisions() if d["sample_id"] == sample_id),
            key=lambda d: d["decided_at"],
        )
        return found[0], history

    def counts(self, task: str) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for sample in self.samples(Selection(task=task, status=None)):
            counts[sample.status] += 1
        return counts

    def _raw_samples(self, task: str | None = None) -> list[QueuedSample]:
        if not self._exists():
            return []
        rows = self._scan(QUEUE_TABLE, task)
        rows.sort(key=lambda r: (r["created_at"], r["sample_id"]))
        return [
            QueuedSample(
                **{
                    **r,
                    "record": json.loads(r["record"]),
                    "generator_params": json.loads(r["generator_params"]),
                    "seed_keys": list(r["seed_keys"] or []),
                    "flags": list(r["flags"] or []),
                    "spot_check": bool(r["spot_check"]),
                }
            )
            for r in rows
        ]

    def _decisions(self, task: str | None = None) -> list[dict[str, Any]]:
        return self._scan(DECISIONS_TABLE, task)

    def _scan(self, name: str, task: str | None) -> list[dict[str, Any]]:
        # Filtered by task in the scan, so Iceberg prunes other tasks' files.
        from pyiceberg.expressions import AlwaysTrue, EqualTo

        row_filter = EqualTo("task", task) if task is not None else AlwaysTrue()
        return self.lake.table(name).scan(row_filter=row_filter).to_arrow().to_pylist()

    def _latest_decisions(self, task: str | None = None) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        # Ties (same microsecond) go to the rejection: when in doubt, nothing is published.
        for row in sorted(
            self._decisions(task), key=lambda d: (d["decided_at"], d["decision"] == "rejected")
        ):
            latest[row["sample_id"]] = row
        return latest
