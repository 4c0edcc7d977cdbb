"""Source rows brought to their entity contract's types before the chain (schema drift).

A source changes under us: a column is retyped (``int`` to ``text``), a column disappears, a
new one appears. The contract (``pipelines/contracts.py``) says what the rows must look like,
so each read is conformed to it first:

* a column whose type no longer satisfies the contract is cast to the contract's type row by
  row (``try_cast``); the rows whose value does not convert go to quarantine with the column,
  the two types and the original row, the others go on with the converted value (and a
  warning in the run ledger);
* an optional contract column missing at the source is added as nulls (with a warning);
* a key or required column missing, or a type that cannot be cast at all, breaks the whole
  batch: every row goes to quarantine with the reason, and the run stops at the quality gate
  (exit 6) with the previous clean and curated state in place.

New source columns are not the contract's business: the batch job adds them to the lake as
nullable columns. The plan is plain Python over the Arrow schema (``plan_conform``); the Spark
expressions that carry it out are beside it (``spark_conform``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import pyarrow as pa

from pipelines.contracts import EntityContract, LogicalType
from pipelines.quality import ARROW_TYPES, RULE_PREFIX

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# The Spark type a logical type lands as when the lake has no column to follow yet.
DEFAULT_SPARK_TYPES: dict[LogicalType, str] = {
    "string": "string",
    "integer": "bigint",
    "decimal": "decimal(38,9)",
    "float": "double",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "date": "date",
}
# The columns ``spark_conform`` adds for each row: why it does not conform (null when it
# does), the check that rejected it, and the row as read, for quarantine.
REASON_COLUMN = "_conform_reason"
RULE_COLUMN = "_conform_rule"


@dataclass(frozen=True)
class Cast:
    """A source column whose type does not satisfy its contract type."""

    entity: str
    column: str
    found: str  # the source's type, as Arrow names it
    expected: LogicalType
    target: str  # the Spark SQL type it is cast to

    @property
    def rule_id(self) -> str:
        return f"{RULE_PREFIX}{self.entity}.{self.column}.type"

    @property
    def reason(self) -> str:
        return (
            f"{self.column}: {self.found} at the source, expected {self.expected};"
            " the value does not convert"
        )


@dataclass(frozen=True)
class ConformPlan:
    """What conforming one entity's read takes (empty: the read fits its contract)."""

    entity: str
    casts: tuple[Cast, ...] = ()
    # Optional contract columns the source no longer has: (name, Spark type), added as nulls.
    fill: tuple[tuple[str, str], ...] = ()
    # Why the whole batch cannot be read against the contract (None: it can).
    broken: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def rule_id(self) -> str:
        """The quarantine rule of a broken batch."""
        return f"{RULE_PREFIX}{self.entity}.schema"

    @property
    def needed(self) -> bool:
        return bool(self.casts or self.fill or self.broken)


def plan_conform(
    contract: EntityContract, schema: pa.Schema, lake_types: Mapping[str, str] | None = None
) -> ConformPlan:
    """Compare a read's schema with its contract.

    ``lake_types`` are the Spark SQL types of the entity's existing clean table: a cast
    targets the type the lake already has, so a retyped source does not retype the lake.
    """
    lake_types = lake_types or {}
    entity = contract.entity
    casts: list[Cast] = []
    fill: list[tuple[str, str]] = []
    missing_needed: list[str] = []
    for column in contract.columns:
        target = lake_types.get(column.name) or DEFAULT_SPARK_TYPES[column.type]
        if column.name not in schema.names:
            if column.required or column.name in contract.key:
                missing_needed.append(column.name)
            else:
                fill.append((column.name, target))
            continue
        found = schema.field(column.name).type
        if pa.types.is_null(found):
            # A column of nulls only (an export that left it empty) carries no type to
            # contradict the contract; giving it the contract's type keeps the lake stable.
            fill.append((column.name, target))
        elif not ARROW_TYPES[column.type](found):
            casts.append(Cast(entity, column.name, str(found), column.type, target))
    warnings = [
        f"{entity}: source column {c.column} is {c.found}, the contract says {c.expected};"
        f" values cast to {c.target}, rows that do not convert quarantined"
        for c in casts
    ]
    warnings += [
        f"{entity}: contract column {name} is missing at the source; filled with nulls"
        for name, _ in fill
        if name not in schema.names
    ]
    broken = None
    if missing_needed:
        broken = (
            f"{entity}: key or required columns missing at the source: {', '.join(missing_needed)}"
        )
    return ConformPlan(entity, tuple(casts), tuple(fill), broken, tuple(warnings))


def with_broken(plan: ConformPlan, reason: str) -> ConformPlan:
    """The plan for a batch found unreadable while carrying out ``plan``."""
    return replace(plan, broken=f"{plan.entity}: {reason}")


# -- Spark ---------------------------------------------------------------------------------------


def mark_rows(frame: DataFrame, plan: ConformPlan) -> DataFrame:
    """``frame`` (as read) plus ``REASON_COLUMN`` and ``RULE_COLUMN``: why a row does not
    conform and the check that says so, null for rows that do. A broken plan marks every row.

    Raises ``pyspark.errors.AnalysisException`` (when Spark plans it) for a cast that is
    impossible for the type (a struct to a number): the caller treats the batch as broken.
    """
    from pyspark.sql import functions as F

    if plan.broken:
        return frame.select(
            "*",
            F.lit(plan.broken).alias(REASON_COLUMN),
            F.lit(plan.rule_id).alias(RULE_COLUMN),
        )
    reason = F.lit(None).cast("string")
    rule = F.lit(None).cast("string")
    # Built from the last cast back, so the first failing column (contract order) names it.
    for cast in reversed(plan.casts):
        failed = F.col(cast.column).isNotNull() & _try_cast(cast.column, cast.target).isNull()
        reason = F.when(failed, F.lit(cast.reason)).otherwise(reason)
        rule = F.when(failed, F.lit(cast.rule_id)).otherwise(rule)
    return frame.select("*", reason.alias(REASON_COLUMN), rule.alias(RULE_COLUMN))


def conformed_rows(marked: DataFrame, plan: ConformPlan) -> DataFrame:
    """The rows that conform, in the contract's types (missing optional columns filled with
    nulls), without the marker columns."""
    from pyspark.sql import functions as F

    casts = {c.column: c.target for c in plan.casts}
    fills = dict(plan.fill)
    data = [n for n in marked.columns if n not in (REASON_COLUMN, RULE_COLUMN)]
    columns = [
        _try_cast(name, casts[name]).alias(name)
        if name in casts
        else F.col(name).cast(fills[name]).alias(name)
        if name in fills
        else F.col(name)
        for name in data
    ]
    columns += [F.lit(None).cast(t).alias(n) for n, t in plan.fill if n not in data]
    return marked.where(F.col(REASON_COLUMN).isNull()).select(*columns)


def rejected_rows(marked: DataFrame) -> DataFrame:
    """The rows that do not conform, as read, with their reason and rule columns."""
    from pyspark.sql import functions as F

    return marked.where(F.col(REASON_COLUMN).isNotNull())


def _try_cast(column: str, target: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f"try_cast(`{column}` AS {target})")
