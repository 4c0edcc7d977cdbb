"""The row-level quality gate in the chain: ``QualityStage`` and its row checks without GX.

A contract's row checks (``pipelines.quality.contract_checks``, level "row") run here, per
batch, in every Spark worker and Flink bundle: the failing rows leave the batch to quarantine
with ``_rule_id = "quality.<check name>"``. The batch-level gates between zones live in
``pipelines/quality.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa

from pipelines.chain import StageResult, per_entity, rejected_table
from pipelines.contracts import EntityContract, QualityConfig
from pipelines.errors import QualityGateFailed
from pipelines.quality import (
    PII_EXPECTATION,
    CheckSpec,
    contract_checks,
    gx_runtime,
    pii_free,
    schema_problems,
    to_pandas,
)

# -- row checks without GX: the chain's hot path -----------------------------------------------
#
# The chain runs once per Arrow batch in every Spark worker (and per Flink bundle). Through GX a
# row check costs about a second per batch whatever its size, and importing GX costs each worker
# tens of seconds, more than the rest of a first entity's chain. The row-level expectations below
# are evaluated over the batch's Python values with GX's pandas semantics (``column.isin``,
# ``str.contains``, Python comparisons; nulls are not unexpected except for not-null), and the
# same test vectors run through both (tests/pipelines/test_batch_row_checks.py). An
# expectation, an argument (``mostly``, ``row_condition``…) or a column type not covered here
# goes to GX, and so does a case whose GX answer is not obvious (a column pair with one value
# missing): a function answers None for "ask GX".

# Positions of the rows that fail the check, or None: GX decides.
NativeRowCheck = Callable[[pa.Table, CheckSpec], "list[int] | None"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _column_values(
    batch: pa.Table, spec: CheckSpec, accepts: Callable[[pa.DataType], bool]
) -> list[Any] | None:
    """The checked column's values, or None when the column is missing or of a type the
    native check does not cover."""
    if spec.column is None or spec.column not in batch.column_names:
        return None
    column = batch[spec.column]
    return column.to_pylist() if accepts(column.type) else None


def _failing(values: Sequence[Any], fails: Callable[[Any], bool]) -> list[int]:
    return [i for i, v in enumerate(values) if v is not None and fails(v)]


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _inside(value: Any, lo: Any, hi: Any, strict_lo: bool, strict_hi: bool) -> bool:
    # Written as GX's per-value test is, so NaN (never inside) fails as it does there.
    above = lo is None or (value > lo if strict_lo else value >= lo)
    return above and (hi is None or (value < hi if strict_hi else value <= hi))


def _bounds(kwargs: Mapping[str, Any]) -> tuple[Any, Any, bool, bool] | None:
    """``min_value``, ``max_value`` and strictness when GX would accept them as numbers (GX
    raises for no bound or crossed bounds: it reports those)."""
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is None and hi is None) or not all(_is_number(b) for b in (lo, hi) if b is not None):
        return None
    if lo is not None and hi is not None and lo > hi:
        return None
    return lo, hi, bool(kwargs.get("strict_min")), bool(kwargs.get("strict_max"))


def _not_null(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    if spec.column is None or spec.column not in batch.column_names:
        return None
    nulls = batch[spec.column].is_null().to_pylist()
    return [i for i, null in enumerate(nulls) if null]


def _set_membership(want: bool) -> NativeRowCheck:
    def check(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
        value_set = spec.kwargs.get("value_set")
        if value_set is None:
            return []  # GX: vacuously true
        if all(isinstance(v, str) for v in value_set):
            accepts = _text
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in value_set):
            accepts = pa.types.is_integer
        else:
            return None
        values = _column_values(batch, spec, accepts)
        if values is None:
            return None
        allowed = set(value_set)
        return _failing(values, lambda v: (v in allowed) != want)

    return check


def _between(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    bounds = _bounds(spec.kwargs)
    values = _column_values(batch, spec, _numeric)
    if bounds is None or values is None:
        return None
    return _failing(values, lambda v: not _inside(v, *bounds))


def _lengths_between(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    bounds = _bounds(spec.kwargs)
    values = _column_values(batch, spec, _text)
    if bounds is None or values is None:
        return None
    return _failing(values, lambda v: not _inside(len(v), *bounds))


def _regex(want: bool) -> NativeRowCheck:
    def check(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
        import re

        values = _column_values(batch, spec, _text)
        if values is None or not isinstance(spec.kwargs.get("regex"), str):
            return None
        try:
            pattern = re.compile(spec.kwargs["regex"])
        except re.error:
            return None  # GX reports the check as unable to run
        return _failing(values, lambda v: (pattern.search(v) is not None) != want)

    return check


def _json_parseable(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    values = _column_values(batch, spec, _text)
    if values is None:
        return None

    def unparseable(value: str) -> bool:
        try:
            json.loads(value)
        except ValueError:
            return True
        return False

    return _failing(values, unparseable)


def _pair_greater(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    names = (spec.kwargs.get("column_A"), spec.kwargs.get("column_B"))
    ignore = spec.kwargs.get("ignore_row_if", "both_values_are_missing")
    if not all(n in batch.column_names for n in names) or ignore not in _PAIR_IGNORABLE:
        return None
    a_type, b_type = (batch[n].type for n in names)
    comparable = (_numeric(a_type) and _numeric(b_type)) or (
        a_type == b_type and pa.types.is_timestamp(a_type)
    )
    if not comparable:
        return None
    or_equal = bool(spec.kwargs.get("or_equal"))
    failing = []
    for i, (a, b) in enumerate(zip(*(batch[n].to_pylist() for n in names), strict=True)):
        if a is None or b is None:
            if (a is None and b is None) or ignore == "either_value_is_missing":
                continue
            return None  # one value missing: what GX's pandas comparison says is for GX to say
        if not (a >= b if or_equal else a > b):
            failing.append(i)
    return failing


_PAIR_IGNORABLE = ("both_values_are_missing", "either_value_is_missing")
_BOUND_ARGS = frozenset({"min_value", "max_value", "strict_min", "strict_max"})


def _free_of_pii(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    if spec.column is None or spec.column not in batch.column_names:
        return None
    values = batch[spec.column].to_pylist()
    free = pii_free(values, spec.kwargs.get("types"), spec.kwargs.get("threshold", 0.5))
    return [
        i for i, (v, ok) in enumerate(zip(values, free, strict=True)) if v is not None and not ok
    ]


# Expectation name -> (the arguments it evaluates natively, the check). Any other argument
# sends the check to GX.
_NATIVE_ROW_CHECKS: dict[str, tuple[frozenset[str], NativeRowCheck]] = {
    "expect_column_values_to_not_be_null": (frozenset(), _not_null),
    "expect_column_values_to_be_in_set": (frozenset({"value_set"}), _set_membership(True)),
    "expect_column_values_to_not_be_in_set": (frozenset({"value_set"}), _set_membership(False)),
    "expect_column_values_to_be_between": (_BOUND_ARGS, _between),
    "expect_column_value_lengths_to_be_between": (_BOUND_ARGS, _lengths_between),
    "expect_column_values_to_match_regex": (frozenset({"regex"}), _regex(True)),
    "expect_column_values_to_not_match_regex": (frozenset({"regex"}), _regex(False)),
    "expect_column_values_to_be_json_parseable": (frozenset(), _json_parseable),
    "expect_column_pair_values_a_to_be_greater_than_b": (
        frozenset({"column_A", "column_B", "or_equal", "ignore_row_if"}),
        _pair_greater,
    ),
    PII_EXPECTATION: (frozenset({"types", "threshold"}), _free_of_pii),
}


def native_failing_rows(batch: pa.Table, spec: CheckSpec) -> list[int] | None:
    """Positions of the rows of ``batch`` that fail the row check ``spec``, computed without
    GX; None when GX must evaluate it (see above)."""
    entry = _NATIVE_ROW_CHECKS.get(spec.expectation)
    if entry is None or not set(spec.kwargs) <= entry[0]:
        return None
    return entry[1](batch, spec)


# -- the row-level gate in the chain -----------------------------------------------------------


class QualityStage:
    """The chain stage: rows failing a row-level check go to quarantine.

    A row failing several checks is quarantined under the first (contract order) with the
    others named in the reason. Batches may mix entities (``_entity``); an entity without a
    contract passes through unless ``config.require_contracts``. A schema that breaks the
    contract, or a row check that cannot run at all, is a batch-level failure: the stage
    raises ``QualityGateFailed`` instead of quarantining a whole batch for one cause.
    """

    name = "quality"
    added_fields: Sequence[pa.Field] = ()

    def __init__(
        self, contracts: Mapping[str, EntityContract], config: QualityConfig | None = None
    ):
        self.contracts = dict(contracts)
        self.config = config or QualityConfig()
        self._row_checks = {
            entity: [c for c in contract_checks(contract, self.config) if c.level == "row"]
            for entity, contract in self.contracts.items()
        }
        # GX suites for the checks GX evaluates, by their names (built on first use).
        self._suites: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The chain is pickled to Spark workers; GX suites (and the PII expectation class,
        # defined at runtime) do not pickle, and each worker rebuilds them on first use.
        return {**self.__dict__, "_suites": {}}

    def process(self, batch: pa.Table) -> StageResult:
        if batch.num_rows == 0:
            empty = rejected_table(batch, [], [])
            return StageResult(batch, empty, empty)
        return per_entity(batch, self._process_entity)

    def _process_entity(self, batch: pa.Table, entity: str) -> StageResult:
        empty = rejected_table(batch.slice(0, 0), [], [])
        contract = self.contracts.get(entity)
        if contract is None:
            if self.config.require_contracts:
                raise QualityGateFailed(f"{entity}: no contract", stage="quality")
            return StageResult(batch, empty, empty)
        problems = schema_problems(contract, batch.schema)
        if problems:
            raise QualityGateFailed(
                f"{entity}: {entity}.schema failed: {'; '.join(problems)}", stage="quality"
            )
        checks = self._row_checks[entity]
        if not checks:
            return StageResult(batch, empty, empty)
        failing = self._failing_rows(batch, entity, checks)
        if not failing:
            return StageResult(batch, empty, empty)
        positions = sorted(failing)
        rule_ids = [failing[i][0].rule_id for i in positions]
        reasons = [_row_reason(failing[i]) for i in positions]
        mask = pa.array([i not in failing for i in range(batch.num_rows)], pa.bool_())
        return StageResult(
            batch.filter(mask),
            rejected_table(batch.take(pa.array(positions, pa.int64())), rule_ids, reasons),
            empty,
        )

    def _failing_rows(
        self, batch: pa.Table, entity: str, checks: list[CheckSpec]
    ) -> dict[int, list[CheckSpec]]:
        failing: dict[int, list[CheckSpec]] = {}
        for_gx = []
        for spec in checks:
            rows = native_failing_rows(batch, spec)
            if rows is None:
                for_gx.append(spec)
            for index in rows or ():
                failing.setdefault(index, []).append(spec)
        if for_gx:
            self._gx_failing_rows(batch, entity, for_gx, failing)
        order = {c.name: n for n, c in enumerate(checks)}
        return {i: sorted(specs, key=lambda s: order[s.name]) for i, specs in failing.items()}

    def _gx_failing_rows(
        self,
        batch: pa.Table,
        entity: str,
        checks: list[CheckSpec],
        failing: dict[int, list[CheckSpec]],
    ) -> None:
        """Add the rows GX finds failing ``checks`` to ``failing``."""
        runtime = gx_runtime(None)
        name = f"{entity}.rows"
        key = ",".join(c.name for c in checks)
        if key not in self._suites:
            self._suites[key] = runtime.suite(name, checks)
        columns = sorted({c for spec in checks for c in _columns_of(spec)})
        frame = to_pandas(batch.select(columns))
        result = runtime.validate_rows(frame, name, self._suites[key])
        by_name = {c.name: c for c in checks}
        for item in result.results:
            spec = by_name[item.expectation_config.meta["steward_check"]]
            info = item.exception_info or {}
            if info.get("raised_exception"):
                message = " ".join(str(info.get("exception_message")).split())[:300]
                raise QualityGateFailed(
                    f"{entity}: {spec.name} could not run: {message}", stage="quality"
                )
            if item.success:
                continue
            for index in (item.result or {}).get("unexpected_index_list") or []:
                failing.setdefault(int(index), []).append(spec)


def _columns_of(spec: CheckSpec) -> list[str]:
    if spec.column is not None:
        return [spec.column]
    return [v for k, v in spec.kwargs.items() if k in ("column_A", "column_B")] + list(
        spec.kwargs.get("column_list", [])
    )


def _row_reason(specs: list[CheckSpec]) -> str:
    """Which checks failed and on which column; never the value (it may be the PII)."""
    first = specs[0]
    where = f"{first.column}: " if first.column else ""
    reason = f"{where}{first.expectation}"
    if len(specs) > 1:
        reason += "; also " + ", ".join(s.name for s in specs[1:])
    return reason


__all__ = ["NativeRowCheck", "QualityStage", "native_failing_rows"]
