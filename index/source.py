"""Read a curated dataset for the knowledge base: only the columns it needs, pinned to one
snapshot, in record batches (pyiceberg; no JVM)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from index.config import KnowledgeBaseConfig
from pipelines.errors import ConfigError, LakeError
from pipelines.lake import LINEAGE_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

    from pipelines.lake import Lake

# Lineage that later zones add (ARCHITECTURE.md); carried into the payload when present.
LATER_LINEAGE = ("_rules_version", "_privacy_policy_version", "_synthetic", "_seed_keys")


@dataclass(frozen=True)
class DatasetSnapshot:
    dataset: str
    table: str
    snapshot_id: int | None
    columns: list[str]
    batches: Iterator[pa.RecordBatch]


def lineage_columns(names: list[str]) -> list[str]:
    return [c for c in (*LINEAGE_COLUMNS, *LATER_LINEAGE) if c in names]


def read_dataset(lake: Lake, kb: KnowledgeBaseConfig, dataset: str) -> DatasetSnapshot:
    """The current snapshot of the dataset's table, with lineage, text and tag columns."""
    spec = kb.datasets[dataset]
    name = spec.table_name(dataset)
    table = lake.table(name)
    present = [field.name for field in table.schema().fields]
    wanted = {"_source_key", *spec.fields, *spec.tag_columns().values()}
    if missing := sorted(wanted - set(present)):
        raise ConfigError(
            f"kb.datasets.{dataset}: table {name} has no columns {missing}"
            f" (it has: {', '.join(present)})"
        )
    columns = [
        *lineage_columns(present),
        *(c for c in present if c in wanted and not c.startswith("_")),
    ]
    snapshot = table.current_snapshot()
    try:
        reader = table.scan(
            selected_fields=tuple(columns),
            snapshot_id=snapshot.snapshot_id if snapshot else None,
        ).to_arrow_batch_reader()
    except Exception as exc:
        raise LakeError(f"table {name}: cannot read: {exc}", stage="kb") from None
    return DatasetSnapshot(
        dataset, name, snapshot.snapshot_id if snapshot else None, columns, iter(reader)
    )
