"""Quality gates: Great Expectations suites built from entity contracts.

A contract (``pipelines/contracts.py``) becomes a list of ``CheckSpec``s in plain Python, and
only then a GX suite, so what is checked can be read and tested without GX. Every check has a
level (``EXPECTATION_KINDS``):

* **row** checks (not null, allowed values, ranges, regex, no PII left in text fields) run in
  the chain as ``QualityStage`` (``pipelines/quality_stage.py``): the failing rows leave the
  batch to quarantine with ``_rule_id = "quality.<check name>"``. The chain runs per batch in
  every Spark or Flink worker, so the registered row expectations are evaluated there without
  GX, with GX's semantics; GX evaluates what those do not cover.
* **batch** checks (schema, key uniqueness, row count against the previous passed run,
  steward batch expectations) run on a whole batch with ``check_batch`` / ``QualityGate.check``;
  a failure blocks the publish: ``raise_if_failed`` raises ``QualityGateFailed``.

Results are written as one JSON summary per run, entity and gate under
``<lake root>/quality/runs/<run id>/`` (what ``steward quality report`` prints), and GX keeps its
validation results under ``quality/gx/`` from which the Data Docs (HTML) in
``quality/data_docs/`` are built. Neither ever holds a row value: GX is asked for counts only,
because the values of a failed PII check are the PII.

Great Expectations takes seconds to import (tens of seconds on a loaded machine), so it is
imported inside the functions that need it; the one custom expectation
(``expect_column_values_to_be_free_of_pii``, over ``privacy.detect.Detector``) keeps its pandas
and Spark implementations side by side, as GX's own metric providers do.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.contracts import (
    EntityContract,
    Level,
    LogicalType,
    QualityConfig,
)
from pipelines.errors import ConfigError, QualityGateFailed

if TYPE_CHECKING:
    import pandas as pd

RULE_PREFIX = "quality."
SCHEMA_CHECK = "steward_schema"  # the one check that is not a GX expectation
PII_EXPECTATION = "expect_column_values_to_be_free_of_pii"

# Stored validation results and Data Docs show counts, never sample values (PII). BASIC gives
# every count a gate reads; SUMMARY's extra (counts of unexpected values) is emptied by
# ``partial_unexpected_count`` 0 anyway, and computing it cost a third more per validation.
_STORED_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
_ROW_RESULT_FORMAT = {"result_format": "COMPLETE", "partial_unexpected_count": 0}
_DOCS_SITE = "steward"

# -- what a contract checks (plain Python) -------------------------------------------------------


@dataclass(frozen=True)
class CheckSpec:
    """One check: a GX expectation (or the schema check) with its arguments and level."""

    name: str
    expectation: str
    level: Level
    column: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    notes: str | None = None

    @property
    def rule_id(self) -> str:
        """The ``_rule_id`` rows failing this check carry in quarantine."""
        return RULE_PREFIX + self.name


def _column_checks(contract: EntityContract, config: QualityConfig) -> Iterable[CheckSpec]:
    entity = contract.entity
    for column in contract.columns:
        prefix = f"{entity}.{column.name}"
        if column.required or column.name in contract.key:
            yield CheckSpec(
                f"{prefix}.required", "expect_column_values_to_not_be_null", "row", column.name
            )
        if column.allowed is not None:
            yield CheckSpec(
                f"{prefix}.allowed",
                "expect_column_values_to_be_in_set",
                "row",
                column.name,
                {"value_set": list(column.allowed)},
            )
        if column.min is not None or column.max is not None:
            yield CheckSpec(
                f"{prefix}.range",
                "expect_column_values_to_be_between",
                "row",
                column.name,
                {"min_value": column.min, "max_value": column.max},
            )
        if column.regex is not None:
            yield CheckSpec(
                f"{prefix}.pattern",
                "expect_column_values_to_match_regex",
                "row",
                column.name,
                {"regex": column.regex},
            )
        if column.pii_free:
            yield CheckSpec(
                f"{prefix}.no_pii",
                PII_EXPECTATION,
                "row",
                column.name,
                {"types": config.pii_types, "threshold": config.pii_threshold},
            )


def contract_checks(
    contract: EntityContract,
    config: QualityConfig | None = None,
    *,
    previous_rows: int | None = None,
) -> list[CheckSpec]:
    """Every check a contract implies, in a stable order: schema, columns, key, row count,
    per-column row checks, then the steward's own expectations.

    The row count check exists only when ``previous_rows`` (the previous passed run's count)
    is known and positive: a first run has nothing to fall from.
    """
    config = config or QualityConfig()
    entity = contract.entity
    checks = [
        CheckSpec(f"{entity}.schema", SCHEMA_CHECK, "batch"),
        CheckSpec(
            f"{entity}.columns",
            "expect_table_columns_to_match_set",
            "batch",
            kwargs={"column_set": contract.column_names, "exact_match": False},
        ),
    ]
    if len(contract.key) == 1:
        checks.append(
            CheckSpec(
                f"{entity}.key.unique",
                "expect_column_values_to_be_unique",
                "batch",
                contract.key[0],
            )
        )
    else:
        checks.append(
            CheckSpec(
                f"{entity}.key.unique",
                "expect_compound_columns_to_be_unique",
                "batch",
                kwargs={"column_list": list(contract.key)},
            )
        )
    if previous_rows:
        floor = math.ceil(previous_rows * (1 - config.max_drop_for(contract)))
        checks.append(
            CheckSpec(
                f"{entity}.row_count",
                "expect_table_row_count_to_be_between",
                "batch",
                kwargs={"min_value": floor, "max_value": None},
                notes=f"previous passed run had {previous_rows} rows",
            )
        )
    checks.extend(_column_checks(contract, config))
    checks.extend(
        CheckSpec(e.name, e.expect, e.level, e.column, dict(e.kwargs), e.notes)
        for e in contract.expectations
    )
    return checks


# -- the schema check: contract types against the Arrow schema ----------------------------------

# Which Arrow types satisfy each logical type. Spark and pandas schemas are compared after
# conversion to Arrow, so one table serves every engine.
ARROW_TYPES: dict[LogicalType, Callable[[pa.DataType], bool]] = {
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "integer": pa.types.is_integer,
    "decimal": pa.types.is_decimal,
    "float": pa.types.is_floating,
    "boolean": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
    "date": pa.types.is_date,
}


def schema_problems(contract: EntityContract, schema: pa.Schema) -> list[str]:
    """What is wrong with ``schema`` against the contract: missing columns, wrong types.
    Extra columns are fine (lineage columns, columns a stage added)."""
    problems = []
    for column in contract.columns:
        if column.name not in schema.names:
            problems.append(f"{column.name}: missing")
            continue
        actual = schema.field(column.name).type
        # A column of nulls only (pa.null()) carries no type to contradict the contract.
        if not pa.types.is_null(actual) and not ARROW_TYPES[column.type](actual):
            problems.append(f"{column.name}: {actual}, expected {column.type}")
    return problems


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckOutcome:
    """How one check went on one batch (counts only, never values)."""

    name: str
    expectation: str
    level: Level
    success: bool
    column: str | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: Any = None
    error: str | None = None


@dataclass(frozen=True)
class QualityResult:
    """One gate on one entity's batch in one run."""

    entity: str
    gate: str
    run_id: str
    rows: int
    checks: tuple[CheckOutcome, ...]
    previous_rows: int | None = None
    rows_block: bool = False  # row-level failures block too (a gate after the row stage)
    checked_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    data_docs: str | None = None
    # The gate whose outcomes on the same rows this one took instead of validating them again
    # (None: it ran its own validation; see check_batch's ``outcomes_of``).
    outcomes_from: str | None = None

    def blocks(self, check: CheckOutcome) -> bool:
        return not check.success and (check.level == "batch" or self.rows_block)

    @property
    def failures(self) -> list[CheckOutcome]:
        """The failed checks that block the publish."""
        return [c for c in self.checks if self.blocks(c)]

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        data["checks"] = [asdict(c) for c in self.checks]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QualityResult:
        fields = {k: v for k, v in data.items() if k not in ("passed", "checks")}
        checks = tuple(CheckOutcome(**c) for c in data["checks"])
        return cls(checks=checks, **fields)


def failure_details(result: QualityResult) -> list[str]:
    """Each blocking failure as ``name (error) (n rows)``: counts, never values."""
    return [
        c.name
        + (f" ({c.error})" if c.error else "")
        + (f" ({c.unexpected_count} rows)" if c.unexpected_count else "")
        for c in result.failures
    ]


def raise_if_failed(result: QualityResult) -> None:
    """Raise ``QualityGateFailed`` naming the entity, gate and failed checks."""
    if result.passed:
        return
    failed = "; ".join(failure_details(result))
    raise QualityGateFailed(
        f"{result.entity}: {len(result.failures)} failed at gate {result.gate}: {failed}",
        stage=f"quality.{result.gate}",
        run_id=result.run_id,
    )


# -- Great Expectations ---------------------------------------------------------------------------


@cache
def _pii_expectation() -> type:
    """Define (once) and return the GX expectation over ``privacy.detect.Detector``.

    Defined inside a function because GX registers an expectation when its class is created,
    and importing GX at module level would cost every CLI command seconds.
    """
    from typing import ClassVar

    import pandas as pd
    from great_expectations.execution_engine import (
        PandasExecutionEngine,
        SparkDFExecutionEngine,
    )
    from great_expectations.expectations.expectation import ColumnMapExpectation
    from great_expectations.expectations.metrics import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )

    class ColumnValuesFreeOfPii(ColumnMapMetricProvider):
        condition_metric_name = "column_values.steward_free_of_pii"
        condition_value_keys = ("types", "threshold")

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column: pd.Series, types: list[str] | None, threshold: float, **_: Any):
            return pd.Series(pii_free(column.tolist(), types, threshold), index=column.index)

        @column_condition_partial(engine=SparkDFExecutionEngine)
        def _spark(cls, column: Any, types: list[str] | None, threshold: float, **_: Any):
            return _spark_pii_free(types, threshold)(column)

    class ExpectColumnValuesToBeFreeOfPii(ColumnMapExpectation):
        """Expect no PII finding (``privacy.detect``) in the column's text values."""

        map_metric: ClassVar[str] = "column_values.steward_free_of_pii"
        success_keys: ClassVar[tuple[str, ...]] = ("mostly", "types", "threshold")
        types: list[str] | None = None
        threshold: float = 0.5

    return ExpectColumnValuesToBeFreeOfPii


def pii_free(values: Sequence[Any], types: list[str] | None, threshold: float) -> list[bool]:
    found = _detector(tuple(types) if types else None, threshold).scan_many(
        [v if isinstance(v, str) else None for v in values]
    )
    return [not findings for findings in found]


@cache
def _detector(types: tuple[str, ...] | None, threshold: float) -> Any:
    from privacy.detect import Detector

    return Detector(types, threshold=threshold)


def _spark_pii_free(types: list[str] | None, threshold: float) -> Callable[[Any], Any]:
    """The Spark side of the PII check: a pandas UDF over the same detector."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("boolean")  # type: ignore[call-overload]
    def free_of_pii(values: pd.Series) -> pd.Series:
        return pd.Series(pii_free(values.tolist(), types, threshold), index=values.index)

    return free_of_pii


def _expectation(spec: CheckSpec) -> Any:
    """The GX expectation object for a spec (class looked up by its snake_case name)."""
    import great_expectations.expectations as gxe

    if spec.expectation == PII_EXPECTATION:
        cls = _pii_expectation()
    else:
        class_name = "".join(part.capitalize() for part in spec.expectation.split("_"))
        cls = getattr(gxe, class_name, None)
        if cls is None:
            raise ConfigError(f"check {spec.name}: GX has no expectation {spec.expectation}")
    kwargs = dict(spec.kwargs)
    if spec.column is not None:
        kwargs["column"] = spec.column
    try:
        return cls(**kwargs, meta={"steward_check": spec.name}, notes=spec.notes)
    except Exception as exc:  # GX validates arguments with its own pydantic (v1) models
        message = " ".join(str(exc).split())
        raise ConfigError(f"check {spec.name}: {spec.expectation}: {message}") from None


class _Gx:
    """One GX ephemeral context, with validation results and Data Docs on disk when
    ``root`` is given (the lake's ``quality/`` folder), in memory otherwise."""

    def __init__(self, root: Path | None):
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
            progress_bars=ProgressBarsConfig(globally=False),
            analytics_enabled=False,
        )
        if root is not None:
            # Suites are rebuilt from contracts every run (the contracts are the source of
            # truth); only validation results persist, so Data Docs list every run.
            stores = dict(config.stores)
            stores[config.validation_results_store_name] = {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(root / "gx" / "validations"),
                },
            }
            config.stores = stores
            config.data_docs_sites = {
                _DOCS_SITE: {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(root / "data_docs"),
                    },
                    "site_index_builder": {
                        "class_name": "DefaultSiteIndexBuilder",
                        "view": _docs_view("IndexPageView"),
                    },
                    # GX's sections with views that compile their templates once per process.
                    "site_section_builders": {
                        "expectations": {"view": _docs_view("PageView")},
                        "validations": {"view": _docs_view("PageView")},
                        "profiling": {"view": _docs_view("PageView")},
                    },
                }
            }
        self.gx = gx
        self.root = root
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self._pandas = self.context.data_sources.add_pandas("steward_pandas")
        self._spark: Any = None
        self._definitions: dict[tuple[str, str], Any] = {}
        # Registering a suite and a validation definition costs about a third of a gate's
        # validation on a few thousand rows (GX serialises both into its stores); a run
        # validates the same suites batch after batch, so each is registered once per
        # content and kept.
        self._suites: dict[str, tuple[list[CheckSpec], Any]] = {}
        # (engine, name) -> the registered validation definition and the suite it was
        # registered with: GX hands out a copy of the suite on each ``validation.suite``, so
        # only the kept pair tells whether the definition still has the current suite.
        self._validations: dict[tuple[str, str], tuple[Any, Any]] = {}

    def suite(self, name: str, checks: Sequence[CheckSpec]) -> Any:
        """The suite of ``checks`` under ``name``; the registered one while they are the same."""
        kept = self._suites.get(name)
        if kept is not None and kept[0] == list(checks):
            return kept[1]
        expectations = [_expectation(c) for c in checks if c.expectation != SCHEMA_CHECK]
        suite = self.gx.ExpectationSuite(name=name, expectations=expectations)
        if self.root is not None:
            suite = self.context.suites.add_or_update(suite)
        self._suites[name] = (list(checks), suite)
        return suite

    def batch_definition(self, engine: str, name: str) -> Any:
        if (engine, name) in self._definitions:
            return self._definitions[engine, name]
        if engine == "spark":
            if self._spark is None:
                self._spark = self.context.data_sources.add_spark("steward_spark")
            source = self._spark
        else:
            source = self._pandas
        definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        self._definitions[engine, name] = definition
        return definition

    def validate_rows(self, frame: pd.DataFrame, name: str, suite: Any) -> Any:
        """Validate without storing (row checks run once per Arrow batch)."""
        batch = self.batch_definition("pandas", name).get_batch(
            batch_parameters={"dataframe": frame}
        )
        return batch.validate(suite, result_format=_ROW_RESULT_FORMAT)

    def validate_batch(self, data: Any, engine: str, name: str, suite: Any, run_id: str) -> Any:
        """Validate a whole batch; with a root, the result is stored for Data Docs."""
        definition = self.batch_definition(engine, name)
        if self.root is None:
            batch = definition.get_batch(batch_parameters={"dataframe": data})
            return batch.validate(suite, result_format=_STORED_RESULT_FORMAT)
        kept = self._validations.get((engine, name))
        if kept is not None and kept[1] is suite:
            validation = kept[0]
        else:
            validation = self.context.validation_definitions.add_or_update(
                self.gx.ValidationDefinition(name=name, data=definition, suite=suite)
            )
            self._validations[engine, name] = (validation, suite)
        return validation.run(
            batch_parameters={"dataframe": data},
            result_format=_STORED_RESULT_FORMAT,
            run_id=self.gx.RunIdentifier(run_name=run_id),
        )

    def build_docs(self, run_id: str | None = None) -> Path:
        """Render the Data Docs pages of ``run_id``'s stored validations and their suites
        (every stored one when None), then the index, which lists every page there is.

        One run's pages rather than all: rendering grows with the lake's history (1.3 s for
        41 stored validations against 0.7 s for the newest run's, measured), the index only a
        little."""
        if self.root is None:
            raise ConfigError("Data Docs need a lake root")
        index = self.root / "data_docs" / "index.html"
        resources: list[Any] | None = None
        if run_id is not None and index.exists():
            resources = [
                key
                for key in self.context.validation_results_store.list_keys()
                if key.run_id.run_name == run_id
            ]
            if not resources:
                return index  # nothing stored by this run: the docs are as they were
            resources += list({key.expectation_suite_identifier for key in resources})
        self.context.build_data_docs(site_names=[_DOCS_SITE], resource_identifiers=resources)
        return index


def _docs_view(class_name: str) -> dict[str, str]:
    return {"module_name": "pipelines.quality_docs", "class_name": class_name}


@cache
def gx_runtime(root: Path | None) -> _Gx:
    """The GX runtime for ``root`` (stored results and Data Docs there; ``None``: in memory)."""
    # One context per process and folder: building one is cheap, importing GX is not, and
    # the context caches the suites and data assets a run reuses batch after batch.
    return _Gx(root)


def _outcomes(result: Any, specs: Mapping[str, CheckSpec]) -> list[CheckOutcome]:
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        spec = specs[config.meta["steward_check"]]
        info = item.exception_info or {}
        error = info.get("exception_message") if info.get("raised_exception") else None
        details = item.result or {}
        outcomes.append(
            CheckOutcome(
                name=spec.name,
                expectation=spec.expectation,
                level=spec.level,
                success=bool(item.success),
                column=spec.column,
                unexpected_count=details.get("unexpected_count"),
                unexpected_percent=_round(details.get("unexpected_percent")),
                observed=_json_safe(details.get("observed_value")),
                error=" ".join(str(error).split())[:300] if error else None,
            )
        )
    return outcomes


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _json_safe(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, default=str))


# -- engines: what a batch is and how its schema reads as Arrow ----------------------------------


def _engine(data: Any) -> str:
    module = type(data).__module__
    if isinstance(data, pa.Table):
        return "arrow"
    if module.startswith("pyspark."):
        return "spark"
    if module.startswith("pandas."):
        return "pandas"
    raise TypeError(f"cannot check a {type(data).__name__}: give an Arrow table, pandas or Spark")


def _arrow_schema(data: Any, engine: str) -> pa.Schema:
    if engine == "arrow":
        return data.schema
    if engine == "spark":
        from pyspark.sql.pandas.types import to_arrow_schema

        return to_arrow_schema(data.schema)
    return pa.Schema.from_pandas(data, preserve_index=False)


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas for GX, keeping Arrow types: integers with nulls stay integers and
    decimals stay decimals, so ranges and sets compare like for like."""
    import pandas as pd

    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _row_count(data: Any, engine: str) -> int:
    if engine == "arrow":
        return data.num_rows
    if engine == "spark":
        return int(data.count())
    return len(data)


@dataclass(frozen=True)
class ZoneStats:
    """Whole-table figures for a gate that checks only a table's changes.

    An engine computes them where the table lives (a Spark count and a group-by on the key
    columns), so a gate over a large table collects only its changed rows.
    """

    rows: int
    duplicate_keys: int  # key values held by more than one row


def check_batch(
    data: Any,
    contract: EntityContract,
    *,
    gate: str,
    run_id: str,
    config: QualityConfig | None = None,
    previous_rows: int | None = None,
    rows_block: bool = False,
    quality_root: Path | None = None,
    zone: ZoneStats | None = None,
    outcomes_of: QualityResult | None = None,
) -> QualityResult:
    """Run every check of ``contract`` on a whole batch (Arrow table, pandas or Spark frame).

    Row-level checks are reported too (with their unexpected counts); they block only with
    ``rows_block`` (a gate after ``QualityStage``, where any failing row means something
    slipped past). With ``quality_root`` GX stores the validation result for Data Docs.
    With ``zone``, ``data`` is only the changed rows of a table: the key and row-count checks
    are judged on the whole table's ``zone`` figures, every other check on ``data``.

    ``outcomes_of`` is the result of an earlier gate of the same run over the very same rows
    with the same contract, judged on the rows alone (no ``zone``, no row count): its
    outcomes are the ones a validation of ``data`` would give, so they are taken instead of
    validating again (the batch job's curated gate after its clean gate). GX then stores no
    validation result for this gate: its Data Docs page for the run is the earlier gate's.
    Returns the result; ``raise_if_failed`` turns a failure into ``QualityGateFailed``.
    """
    config = config or QualityConfig()
    engine = _engine(data)
    checks = contract_checks(
        contract, config, previous_rows=None if zone is not None else previous_rows
    )
    problems = schema_problems(contract, _arrow_schema(data, engine))
    schema = CheckOutcome(
        name=checks[0].name,
        expectation=SCHEMA_CHECK,
        level="batch",
        success=not problems,
        error="; ".join(problems) or None,
    )
    outcomes: list[CheckOutcome] = []
    # Changed rows of a table that did not change: only the whole-table checks apply (a
    # proportion over no rows means nothing).
    judged = zone is None or _row_count(data, engine) > 0
    if judged and outcomes_of is not None:
        outcomes = _taken_outcomes(outcomes_of, contract, checks)
    elif judged:
        name = f"{contract.entity}.{gate}"
        runtime = gx_runtime(quality_root)
        frame = to_pandas(data) if engine == "arrow" else data
        result = runtime.validate_batch(
            frame,
            "spark" if engine == "spark" else "pandas",
            name,
            runtime.suite(name, checks),
            run_id,
        )
        outcomes = _outcomes(result, {c.name: c for c in checks})
    if zone is not None:
        outcomes = _zone_outcomes(contract, config, outcomes, zone, previous_rows)
    return QualityResult(
        entity=contract.entity,
        gate=gate,
        run_id=run_id,
        rows=zone.rows if zone is not None else _row_count(data, engine),
        checks=(schema, *outcomes),
        previous_rows=previous_rows,
        rows_block=rows_block,
        outcomes_from=None if outcomes_of is None else outcomes_of.gate,
    )


def _taken_outcomes(
    earlier: QualityResult, contract: EntityContract, checks: Sequence[CheckSpec]
) -> list[CheckOutcome]:
    """The validation outcomes of ``earlier`` (see ``check_batch``'s ``outcomes_of``), after
    checking that it ran the checks ``checks`` name, judged on its rows alone."""
    taken = [c for c in earlier.checks if c.expectation != SCHEMA_CHECK]
    validated = {c.name for c in checks if c.expectation != SCHEMA_CHECK}
    if (
        earlier.entity != contract.entity
        or earlier.previous_rows is not None
        or {c.name for c in taken} != validated
        or len(taken) != len(validated)
    ):
        raise ValueError(
            f"{contract.entity}: gate {earlier.gate!r} did not run these checks on its rows "
            "alone; its outcomes cannot stand for another gate's"
        )
    return taken


def _zone_outcomes(
    contract: EntityContract,
    config: QualityConfig,
    outcomes: list[CheckOutcome],
    zone: ZoneStats,
    previous_rows: int | None,
) -> list[CheckOutcome]:
    """``outcomes`` of a gate on changed rows, with the key check judged on the whole table
    and the row-count check (same floor as ``contract_checks``) added."""
    unique = f"{contract.entity}.key.unique"
    judged = [o for o in outcomes if o.name != unique]
    judged.append(
        CheckOutcome(
            name=unique,
            expectation=(
                "expect_column_values_to_be_unique"
                if len(contract.key) == 1
                else "expect_compound_columns_to_be_unique"
            ),
            level="batch",
            success=zone.duplicate_keys == 0,
            column=contract.key[0] if len(contract.key) == 1 else None,
            unexpected_count=zone.duplicate_keys,
            observed={"table_rows": zone.rows, "duplicate_keys": zone.duplicate_keys},
        )
    )
    if previous_rows:
        floor = math.ceil(previous_rows * (1 - config.max_drop_for(contract)))
        judged.append(
            CheckOutcome(
                name=f"{contract.entity}.row_count",
                expectation="expect_table_row_count_to_be_between",
                level="batch",
                success=zone.rows >= floor,
                observed=zone.rows,
                error=None
                if zone.rows >= floor
                else f"{zone.rows} rows, at least {floor}"
                f" expected (previous passed run had {previous_rows})",
            ),
        )
    return judged


# -- where results live -------------------------------------------------------------------------


class QualityReports:
    """The lake's ``quality/`` folder: one JSON summary per run, entity and gate, GX's stored
    validation results and the Data Docs built from them."""

    def __init__(self, lake_root: Path):
        self.root = lake_root / "quality"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def data_docs_index(self) -> Path:
        return self.root / "data_docs" / "index.html"

    def write(self, result: QualityResult) -> Path:
        """Store a result; written beside and renamed, so a reader never sees half a file."""
        folder = self.runs_dir / result.run_id
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{result.entity}.{result.gate}.json"
        staging = folder / f".{target.name}.{uuid.uuid4().hex[:8]}"
        staging.write_text(
            json.dumps(result.as_json(), indent=2, ensure_ascii=False, default=str),
            encoding="utf-8",
        )
        os.replace(staging, target)
        return target

    def run_ids(self) -> list[str]:
        """Runs with results, oldest first (run ids sort by time)."""
        if not self.runs_dir.is_dir():
            return []
        return sorted(p.name for p in self.runs_dir.iterdir() if p.is_dir())

    def results(self, run_id: str) -> list[QualityResult]:
        folder = self.runs_dir / run_id
        if not folder.is_dir():
            raise ConfigError(f"no quality results for run {run_id} in {self.runs_dir}")
        return [
            QualityResult.from_json(json.loads(path.read_text("utf-8")))
            for path in sorted(folder.glob("*.json"))
        ]

    def previous_rows(self, entity: str, gate: str, before_run: str | None = None) -> int | None:
        """Rows of the newest passed result for this entity and gate (before ``before_run``)."""
        for run_id in reversed(self.run_ids()):
            if before_run is not None and run_id >= before_run:
                continue
            path = self.runs_dir / run_id / f"{entity}.{gate}.json"
            if path.exists():
                data = json.loads(path.read_text("utf-8"))
                if data.get("passed"):
                    return int(data["rows"])
        return None

    def build_data_docs(self, run_id: str | None = None) -> Path:
        """Build the HTML Data Docs for ``run_id``'s validations (every stored one when None,
        or before the first build); returns index.html."""
        return gx_runtime(self.root).build_docs(run_id)


class QualityGate:
    """What a job calls: batch checks with history, results on disk, and the enforcement.

    >>> gate = QualityGate(config.quality, lake.config.root)
    >>> result = gate.check(frame, "orders", gate="curated", run_id=run.run_id)
    >>> raise_if_failed(result)   # QualityGateFailed: exit code 6, nothing published
    """

    def __init__(
        self,
        config: QualityConfig,
        lake_root: Path,
        contracts: Mapping[str, EntityContract] | None = None,
    ):
        from pipelines.contracts import load_contracts

        self.config = config
        self.contracts = (
            dict(contracts) if contracts is not None else load_contracts(config.contracts_path)
        )
        self.reports = QualityReports(lake_root)

    def check(
        self,
        data: Any,
        entity: str,
        *,
        gate: str,
        run_id: str,
        rows_block: bool = False,
        whole_zone: bool = True,
        zone: ZoneStats | None = None,
        outcomes_of: QualityResult | None = None,
    ) -> QualityResult | None:
        """Check one entity's batch, store the summary; None when the entity has no contract
        (and contracts are not required).

        ``whole_zone`` says ``data`` is the entity's whole table, so its row count is compared
        with the previous passed run's; an incremental batch (only the changed rows) is not.
        ``zone`` says ``data`` holds a table's changed rows and gives the whole table's
        figures (``check_batch``); the row count is then compared too. ``outcomes_of``: an
        earlier gate's result over the same rows, whose outcomes are taken (``check_batch``).
        """
        contract = self.contracts.get(entity)
        if contract is None:
            if self.config.require_contracts:
                raise QualityGateFailed(f"{entity}: no contract", stage=f"quality.{gate}")
            return None
        result = check_batch(
            data,
            contract,
            gate=gate,
            run_id=run_id,
            config=self.config,
            previous_rows=(
                self.reports.previous_rows(entity, gate, before_run=run_id)
                if whole_zone or zone is not None
                else None
            ),
            rows_block=rows_block,
            quality_root=self.reports.root if self.config.data_docs else None,
            zone=zone,
            outcomes_of=outcomes_of,
        )
        if self.config.data_docs:
            result = _with_docs(result, self.reports.data_docs_index)
        self.reports.write(result)
        return result

    def finish(self, run_id: str | None = None) -> Path | None:
        """Build the Data Docs once a run's checks are done: that run's pages (``run_id``) or
        all of them."""
        return self.reports.build_data_docs(run_id) if self.config.data_docs else None


def _with_docs(result: QualityResult, index: Path) -> QualityResult:
    return replace(result, data_docs=str(index))


__all__ = [
    "ARROW_TYPES",
    "CheckOutcome",
    "CheckSpec",
    "QualityGate",
    "QualityReports",
    "QualityResult",
    "ZoneStats",
    "check_batch",
    "contract_checks",
    "failure_details",
    "raise_if_failed",
    "schema_problems",
    "to_pandas",
]
