"""Entity contracts: the columns, types, key and value rules an entity's rows must keep.

One YAML file per entity in ``pipelines/contracts/<entity>.yaml``, validated once with
pydantic (errors name ``file:line: field``), then passed inward as typed objects. The quality
gate (``pipelines/quality.py``) turns a contract into a Great Expectations suite; the dataset
card (``pipelines/card.py``) takes column descriptions from it. This module imports neither
Great Expectations nor pyarrow, so config validation stays instant.

Stewards add expectations beside the generated ones under ``expectations:``; the names they may
use are the ones in ``EXPECTATION_KINDS`` (a registry, so a typo is a config error with its
line, not a failure deep inside a run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from pipelines.config_types import Identifier, StrictModel
from pipelines.errors import ConfigError
from pipelines.yaml_models import load_yaml_model

DEFAULT_CONTRACTS_DIR = Path(__file__).with_name("contracts")

LogicalType = Literal["string", "integer", "decimal", "float", "boolean", "timestamp", "date"]
Level = Literal["row", "batch"]

# Names of checks (and the ``_rule_id`` of quarantined rows) are dotted identifiers.
_CHECK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class ExpectationKind:
    """A Great Expectations expectation stewards may name in YAML.

    ``level`` says what a failure does: ``row`` failures quarantine the failing rows (the
    expectation is a column map: GX can name the rows), ``batch`` failures block the publish.
    ``column`` says whether the expectation takes a ``column``.
    """

    level: Level
    column: bool = True


EXPECTATION_KINDS: dict[str, ExpectationKind] = {
    # Row level: Great Expectations reports the failing rows' indices.
    "expect_column_values_to_not_be_null": ExpectationKind("row"),
    "expect_column_values_to_be_in_set": ExpectationKind("row"),
    "expect_column_values_to_not_be_in_set": ExpectationKind("row"),
    "expect_column_values_to_be_between": ExpectationKind("row"),
    "expect_column_values_to_match_regex": ExpectationKind("row"),
    "expect_column_values_to_not_match_regex": ExpectationKind("row"),
    "expect_column_value_lengths_to_be_between": ExpectationKind("row"),
    "expect_column_values_to_be_json_parseable": ExpectationKind("row"),
    "expect_column_pair_values_a_to_be_greater_than_b": ExpectationKind("row", column=False),
    "expect_column_values_to_be_free_of_pii": ExpectationKind("row"),
    # Batch level: a property of the whole batch, no single row to blame.
    "expect_column_values_to_be_unique": ExpectationKind("batch"),
    "expect_compound_columns_to_be_unique": ExpectationKind("batch", column=False),
    "expect_column_distinct_values_to_be_in_set": ExpectationKind("batch"),
    "expect_column_min_to_be_between": ExpectationKind("batch"),
    "expect_column_max_to_be_between": ExpectationKind("batch"),
    "expect_column_mean_to_be_between": ExpectationKind("batch"),
    "expect_column_proportion_of_non_null_values_to_be_between": ExpectationKind("batch"),
    "expect_column_unique_value_count_to_be_between": ExpectationKind("batch"),
    "expect_table_row_count_to_be_between": ExpectationKind("batch", column=False),
}


def _check_name(value: str) -> str:
    if not _CHECK_NAME.match(value):
        raise ValueError(f"{value!r} is not a dotted name (letters, digits, _ and dots)")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return value


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


CheckName = Annotated[str, AfterValidator(_check_name)]
Regex = Annotated[str, AfterValidator(_regex)]
Scalar = str | int | float | bool


class ColumnContract(StrictModel):
    """One column: its logical type, what it means, and the value rules it keeps."""

    name: Identifier
    type: LogicalType
    description: str = Field(min_length=1)
    required: bool = False
    allowed: list[Scalar] | None = Field(default=None, min_length=1)
    min: float | None = None
    max: float | None = None
    regex: Regex | None = None
    # A free-text field that must leave the chain with no PII finding left in it.
    pii_free: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> ColumnContract:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if (self.regex or self.pii_free) and self.type != "string":
            raise ValueError("regex and pii_free apply to string columns only")
        if (self.min is not None or self.max is not None) and self.type not in (
            "integer",
            "decimal",
            "float",
        ):
            raise ValueError("min and max apply to integer, decimal and float columns only")
        return self


class StewardExpectation(StrictModel):
    """An expectation a steward adds in YAML: a registered GX name with its arguments."""

    name: CheckName
    expect: str
    column: Identifier | None = None
    kwargs: dict[str, Any] = {}
    notes: str | None = None

    @field_validator("expect")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in EXPECTATION_KINDS:
            raise ValueError(
                f"unknown expectation {value!r}; known: {', '.join(sorted(EXPECTATION_KINDS))}"
            )
        return value

    @model_validator(mode="after")
    def _column_when_needed(self) -> StewardExpectation:
        needs = EXPECTATION_KINDS[self.expect].column
        if needs and self.column is None:
            raise ValueError(f"{self.expect} needs a column")
        if not needs and self.column is not None:
            raise ValueError(f"{self.expect} takes no column (give columns in kwargs)")
        if "column" in self.kwargs:
            raise ValueError("give the column as 'column', not inside kwargs")
        return self

    @property
    def level(self) -> Level:
        return EXPECTATION_KINDS[self.expect].level


class EntityContract(StrictModel):
    """What one entity's rows look like once they leave the chain (clean and curated)."""

    entity: Identifier
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    key: Annotated[list[Identifier], BeforeValidator(_one_or_many)] = Field(min_length=1)
    columns: list[ColumnContract] = Field(min_length=1)
    expectations: list[StewardExpectation] = []
    # Overrides QualityConfig.max_row_drop for this entity.
    max_row_drop: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _references(self) -> EntityContract:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns listed twice: {', '.join(duplicates)}")
        missing_key = [k for k in self.key if k not in names]
        if missing_key:
            raise ValueError(f"key columns not among the columns: {', '.join(missing_key)}")
        for expectation in self.expectations:
            if expectation.column is not None and expectation.column not in names:
                raise ValueError(
                    f"expectation {expectation.name}: column {expectation.column} is not a"
                    " contract column"
                )
        checks = [e.name for e in self.expectations]
        repeated = sorted({n for n in checks if checks.count(n) > 1})
        if repeated:
            raise ValueError(f"expectation names used twice: {', '.join(repeated)}")
        return self

    def column(self, name: str) -> ColumnContract | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


class QualityConfig(StrictModel):
    """The ``quality:`` section of ``pipeline.yaml``."""

    # None: the contracts shipped in pipelines/contracts/.
    contracts_dir: Path | None = None
    # A batch whose row count falls by more than this share against the previous passed run
    # of the same entity and gate blocks the publish.
    max_row_drop: float = Field(default=0.5, ge=0, le=1)
    # Detector settings for the expectation that text fields carry no PII.
    pii_types: list[str] | None = None
    pii_threshold: float = Field(default=0.5, ge=0, le=1)
    # Entities without a contract: pass through the gate (False) or stop the run (True).
    require_contracts: bool = False
    # Write Great Expectations Data Docs (HTML) under <lake root>/quality/data_docs/.
    data_docs: bool = True

    def max_drop_for(self, contract: EntityContract) -> float:
        return contract.max_row_drop if contract.max_row_drop is not None else self.max_row_drop

    @property
    def contracts_path(self) -> Path:
        return self.contracts_dir or DEFAULT_CONTRACTS_DIR


def load_contract(path: Path) -> EntityContract:
    """Load one contract; its ``entity`` must match the file name."""
    contract = load_yaml_model(path, EntityContract)
    if contract.entity != path.stem:
        raise ConfigError(f"{path}:1: entity: {contract.entity!r} does not match the file name")
    return contract


def load_contracts(directory: Path | None = None) -> dict[str, EntityContract]:
    """Every ``<entity>.yaml`` in ``directory`` (default: the shipped contracts), by entity."""
    directory = directory or DEFAULT_CONTRACTS_DIR
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such contracts folder")
    return {path.stem: load_contract(path) for path in sorted(directory.glob("*.yaml"))}


__all__ = [
    "DEFAULT_CONTRACTS_DIR",
    "EXPECTATION_KINDS",
    "ColumnContract",
    "EntityContract",
    "ExpectationKind",
    "QualityConfig",
    "StewardExpectation",
    "load_contract",
    "load_contracts",
]
