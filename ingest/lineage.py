"""Lineage columns every ingested row carries (ARCHITECTURE.md, "Contracts every stage keeps")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def with_lineage(
    frame: DataFrame,
    source: str,
    entity: str,
    key: str,
    run_id: str,
    exclude: Sequence[str] = (),
) -> DataFrame:
    """Add ``_source, _entity, _source_key, _ingested_at, _run_id, _content_hash``.

    ``_content_hash`` is the SHA-256 of the row's source columns as JSON (column order
    fixed by name; ``exclude`` names columns that are not source data), so an unchanged source
    row hashes the same on every run and re-ingesting it adds nothing to raw. A key column
    the source no longer has gives null keys (such a batch only goes to quarantine).
    """
    from pyspark.sql import functions as F

    data_columns = sorted(c for c in frame.columns if c not in exclude)
    source_key = F.col(key).cast("string") if key in frame.columns else F.lit(None).cast("string")
    return frame.select(
        *frame.columns,
        F.lit(source).alias("_source"),
        F.lit(entity).alias("_entity"),
        source_key.alias("_source_key"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(run_id).alias("_run_id"),
        F.sha2(F.to_json(F.struct(*[F.col(c) for c in data_columns])), 256).alias("_content_hash"),
    )
