"""The transform chain: engine-agnostic stages over Arrow batches.

A stage is a plain object with one method, ``process(batch) -> StageResult``: the rows it keeps
(possibly changed, possibly with added columns) and the rows it rejects, each rejected row with
the rule or check that rejected it and why. Spark and Flink are executors of the chain
(``pipelines/spark_job.py``, later ``pipelines/flink_job.py``); no stage logic lives there.

The chain's output is one *tagged* table: every input row exactly once, with ``_outcome``
(keep / quarantine / drop), ``_stage``, ``_rule_id`` and ``_reason``. Engines split it by
``_outcome`` and count it by (stage, outcome, rule), which is how the ledger's per-stage
accounting is derived from the data actually written instead of from side counters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.ledger import StageCounts

Outcome = Literal["keep", "quarantine", "drop"]

OUTCOME_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_outcome", pa.string(), nullable=False),
    pa.field("_stage", pa.string()),
    pa.field("_rule_id", pa.string()),
    pa.field("_reason", pa.string()),
)


@dataclass(frozen=True)
class StageResult:
    """Rows a stage kept, and rows it rejected (with ``_rule_id`` and ``_reason`` columns)."""

    kept: pa.Table
    quarantined: pa.Table
    dropped: pa.Table


class Stage(Protocol):
    """One step of the chain. ``added_fields`` are the columns it adds to kept rows."""

    name: str
    added_fields: Sequence[pa.Field]

    def process(self, batch: pa.Table) -> StageResult: ...


def rejected_table(rows: pa.Table, rule_ids: Sequence[str], reasons: Sequence[str]) -> pa.Table:
    """Attach ``_rule_id`` and ``_reason`` to rejected rows (helper for stage authors)."""
    return rows.append_column("_rule_id", pa.array(rule_ids, pa.string())).append_column(
        "_reason", pa.array(reasons, pa.string())
    )


def per_entity(batch: pa.Table, process: Callable[[pa.Table, str], StageResult]) -> StageResult:
    """Run ``process`` on the rows of each ``_entity`` in ``batch`` and join the results (for
    stages whose rules depend on the entity). ``batch`` must have rows."""
    import pyarrow.compute as pc

    if "_entity" not in batch.column_names:
        raise ConfigError("the batch has no _entity column: lineage columns come first")
    parts = [
        process(batch.filter(pc.equal(batch["_entity"], entity)), entity)
        for entity in pc.unique(batch["_entity"]).to_pylist()
    ]
    return StageResult(
        pa.concat_tables([p.kept for p in parts]),
        pa.concat_tables([p.quarantined for p in parts]),
        pa.concat_tables([p.dropped for p in parts]),
    )


class Chain:
    """Stages applied in order; a row rejected by one stage never reaches the next."""

    def __init__(self, stages: Sequence[Stage]):
        self.stages = list(stages)

    @property
    def stage_names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        """Input columns, then each stage's added columns, then the outcome columns."""
        fields = list(input_schema)
        for stage in self.stages:
            fields.extend(f for f in stage.added_fields if f.name not in input_schema.names)
        return pa.schema([*fields, *OUTCOME_FIELDS])

    def run(self, batch: pa.Table) -> pa.Table:
        """Tag every row of ``batch`` with its outcome; the result has ``output_schema``."""
        schema = self.output_schema(batch.schema)
        parts: list[pa.Table] = []
        current = batch
        for stage in self.stages:
            result = stage.process(current)
            for outcome, rows in (("quarantine", result.quarantined), ("drop", result.dropped)):
                if rows.num_rows:
                    parts.append(_tag(rows, schema, outcome, stage.name))
            current = result.kept
        parts.append(_tag(current, schema, "keep", None))
        return pa.concat_tables(parts)


def _tag(rows: pa.Table, schema: pa.Schema, outcome: Outcome, stage: str | None) -> pa.Table:
    """Conform ``rows`` to ``schema``: missing columns become nulls, outcome columns set."""
    n = rows.num_rows
    constants = {"_outcome": outcome, "_stage": stage}
    columns = []
    for field in schema:
        if field.name in constants:
            columns.append(pa.array([constants[field.name]] * n, field.type))
        elif field.name in rows.column_names:
            columns.append(rows.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def stage_counts(
    entity: str,
    stage_names: Sequence[str],
    rows_in: int,
    tallies: Iterable[tuple[str | None, str, str | None, int]],
    durations: dict[str, float] | None = None,
) -> list[StageCounts]:
    """Per-stage accounting from tallies of the tagged output.

    ``tallies`` are ``(stage, outcome, rule_id, count)`` groups as any engine computes them
    (a Spark ``groupBy``, a Python ``Counter``). A stage's input is what the previous stage
    kept; the last stage's output is the rows tagged ``keep``. Rows that appear under a stage
    the chain does not know, or an outcome that is not keep, are left unaccounted on purpose:
    the ledger's balance check then fails the run instead of hiding them.
    """
    rejected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    kept_total = 0
    for stage, outcome, rule_id, count in tallies:
        if outcome == "keep":
            kept_total += count
        elif stage is not None:
            rejected[stage][f"{outcome}:{rule_id}"] += count
    counts = []
    remaining = rows_in
    for position, name in enumerate(stage_names):
        reasons = dict(sorted(rejected.get(name, {}).items()))
        quarantined = sum(n for key, n in reasons.items() if key.startswith("quarantine:"))
        dropped = sum(n for key, n in reasons.items() if key.startswith("drop:"))
        last = position == len(stage_names) - 1
        rows_out = kept_total if last else remaining - quarantined - dropped
        counts.append(
            StageCounts(
                stage=name,
                entity=entity,
                rows_in=remaining,
                rows_out=rows_out,
                quarantined=quarantined,
                dropped=dropped,
                reasons=reasons,
                duration_s=(durations or {}).get(name, 0.0),
            )
        )
        remaining = rows_out
    return counts


__all__ = [
    "OUTCOME_FIELDS",
    "Chain",
    "Stage",
    "StageResult",
    "per_entity",
    "rejected_table",
    "stage_counts",
]
