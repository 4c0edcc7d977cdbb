"""Publish approved samples of a task into ``curated.<dataset>``, marked as synthetic.

Only samples whose latest decision is ``approved`` pass, and only if the PII detector still
finds nothing in them. A sample is published as one row
whose ``_source_key`` is its sample id; samples whose id is already in the table are skipped,
so publishing twice (or after a crash between commit and report) adds nothing. The schema
change (``_synthetic``, ``_seed_keys``, ``_generator``, ``_generator_params``,
``_reviewed_by``) and the rows go in one Iceberg commit: readers see both or neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.errors import ConfigError, LakeError
from synth.config import SynthTask
from synth.generate import SYNTHETIC_FIELD
from synth.queue import QueuedSample, ReviewQueue, Selection

if TYPE_CHECKING:
    from pyiceberg.table import Table

# Lineage columns synth adds to a curated table (ARCHITECTURE.md, "Contracts every stage keeps").
SYNTH_COLUMNS: tuple[pa.Field, ...] = (
    pa.field(SYNTHETIC_FIELD, pa.bool_()),
    pa.field("_seed_keys", pa.list_(pa.string())),
    pa.field("_generator", pa.string()),
    pa.field("_generator_params", pa.string()),
    pa.field("_reviewed_by", pa.string()),
)


@dataclass(frozen=True)
class PublishReport:
    task: str
    dataset: str
    approved: int
    already_published: int
    published: int
    snapshot_id: int | None
    # Approved samples the PII re-check held back (sample id -> PII type); they stay approved
    # in the queue for a person to reject.
    blocked_pii: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def publish_task(lake: Any, task: SynthTask, *, run_id: str) -> PublishReport:
    """Append the task's approved, not yet published samples to ``curated.<dataset>``."""
    from pyiceberg.exceptions import CommitFailedException

    name = f"curated.{task.dataset}"
    approved = ReviewQueue(lake).samples(Selection(task=task.name, status="approved"))
    table = lake.table(name)
    done = _published_keys(table)
    fresh = [s for s in approved if s.sample_id not in done]
    # The privacy re-check at the door: detectors may have learnt new patterns since the
    # samples were generated, and approval is a person's judgement, not a PII scan.
    blocked = _with_pii(fresh, task)
    fresh = [s for s in fresh if s.sample_id not in blocked]
    already = len(approved) - len(fresh) - len(blocked)
    if not fresh:
        return PublishReport(task.name, task.dataset, len(approved), already, 0, None, blocked)

    entity = _entity_of(table, task)
    try:
        with table.transaction() as tx:
            present = set(tx.table_metadata.schema().column_names)
            missing = [f for f in SYNTH_COLUMNS if f.name not in present]
            if missing:
                with tx.update_schema() as update:
                    for f in missing:
                        update.add_column(f.name, _iceberg_type(f.type))
            arrow_schema = tx.table_metadata.schema().as_arrow()
            rows = [_row(s, arrow_schema, entity, run_id, name) for s in fresh]
            tx.append(
                pa.Table.from_pylist(rows, arrow_schema),
                snapshot_properties={"steward.run-id": run_id, "steward.synth-task": task.name},
            )
    except CommitFailedException as exc:
        raise LakeError(f"{name}: concurrent commit, retry: {exc}", transient=True) from None
    snapshot = lake.table(name).current_snapshot()
    return PublishReport(
        task.name,
        task.dataset,
        len(approved),
        already,
        len(fresh),
        snapshot.snapshot_id if snapshot else None,
        blocked,
    )


def _with_pii(samples: list[QueuedSample], task: SynthTask) -> dict[str, str]:
    """Sample id -> PII type for approved samples that the detector flags now."""
    from privacy.detect import Detector

    detector = Detector(threshold=task.filters.pii_threshold)
    blocked = {}
    for sample in samples:
        for name, value in sample.record.items():
            if name == task.label_field or not isinstance(value, str):
                continue
            findings = detector.scan(value)
            if findings:
                blocked[sample.sample_id] = findings[0].type
                break
    return blocked


def _published_keys(table: Table) -> set[str]:
    if SYNTHETIC_FIELD not in table.schema().column_names:
        return set()
    from pyiceberg.expressions import EqualTo

    rows = table.scan(
        row_filter=EqualTo(SYNTHETIC_FIELD, True), selected_fields=("_source_key",)
    ).to_arrow()
    return set(rows.column("_source_key").to_pylist())


def _entity_of(table: Table, task: SynthTask) -> str:
    if "_entity" in table.schema().column_names:
        rows = table.scan(selected_fields=("_entity",), limit=1).to_arrow()
        if rows.num_rows:
            return str(rows.column("_entity")[0].as_py())
    return task.entity


def _row(
    sample: QueuedSample, schema: pa.Schema, entity: str, run_id: str, table: str
) -> dict[str, Any]:
    record = sample.record
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    lineage: dict[str, Any] = {
        "_source": f"synth:{sample.task}",
        "_entity": entity,
        "_source_key": sample.sample_id,
        "_ingested_at": datetime.now(UTC),
        "_run_id": run_id,
        "_content_hash": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        SYNTHETIC_FIELD: True,
        "_seed_keys": sample.seed_keys,
        "_generator": sample.generator,
        "_generator_params": json.dumps(sample.generator_params, sort_keys=True),
        "_reviewed_by": sample.reviewer,
    }
    row: dict[str, Any] = {}
    for f in schema:
        value = lineage[f.name] if f.name in lineage else record.get(f.name)
        if value is None and not f.nullable:
            raise ConfigError(
                f"{table}: required column {f.name} has no value in synthetic sample"
                f" {sample.sample_id}"
            )
        if isinstance(value, datetime) and pa.types.is_string(f.type):
            value = value.isoformat()
        row[f.name] = value
    return row


def _iceberg_type(arrow_type: pa.DataType) -> Any:
    from pyiceberg.types import BooleanType, ListType, StringType

    if pa.types.is_boolean(arrow_type):
        return BooleanType()
    if pa.types.is_list(arrow_type):
        return ListType(element_id=0, element_type=StringType(), element_required=False)
    return StringType()
