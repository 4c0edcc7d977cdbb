"""The chain's row checks evaluated without GX name exactly the rows GX names: the same
vectors run through both (``pipelines/quality_stage.py``, "row checks without GX")."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from pipelines.quality import PII_EXPECTATION, CheckSpec
from pipelines.quality_stage import QualityStage, native_failing_rows

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 27, 13, 0, tzinfo=UTC)

# (expectation, kwargs, column values); a pair check reads columns a and b.
VECTORS: list[tuple[str, dict[str, Any], dict[str, pa.Array]]] = [
    ("expect_column_values_to_not_be_null", {}, {"x": pa.array([1, None, 3, None])}),
    ("expect_column_values_to_not_be_null", {}, {"x": pa.array(["", None, "a"])}),
    (
        "expect_column_values_to_be_in_set",
        {"value_set": ["CNY", "EUR"]},
        {"x": pa.array(["CNY", "XXX", None, "cny", "EUR"])},
    ),
    ("expect_column_values_to_be_in_set", {"value_set": [1, 2]}, {"x": pa.array([1, 3, None])}),
    (
        "expect_column_values_to_not_be_in_set",
        {"value_set": ["lost"]},
        {"x": pa.array(["paid", "lost", None])},
    ),
    ("expect_column_values_to_be_between", {"min_value": 1}, {"x": pa.array([0, 1, 2, None])}),
    (
        "expect_column_values_to_be_between",
        {"min_value": 0, "max_value": 10, "strict_min": True, "strict_max": True},
        {"x": pa.array([0.0, 0.5, 10.0, math.nan, None])},
    ),
    (
        "expect_column_values_to_be_between",
        {"min_value": 0, "max_value": None},
        {"x": pa.array([Decimal("-0.01"), Decimal("0.00"), None], pa.decimal128(8, 2))},
    ),
    (
        "expect_column_value_lengths_to_be_between",
        {"min_value": 4, "max_value": 6},
        {"x": pa.array(["abc", "abcd", "处方处方处方", "abcdefg", None])},
    ),
    (
        "expect_column_values_to_match_regex",
        {"regex": "^tok_[a-p]+$"},
        {"x": pa.array(["tok_abc", "Zhang San", None, "xtok_a", "tok_"])},
    ),
    (
        "expect_column_values_to_not_match_regex",
        {"regex": r"\d{11}"},
        {"x": pa.array(["call 13812345678", "no phone", None])},
    ),
    (
        "expect_column_values_to_be_json_parseable",
        {},
        {"x": pa.array(['{"a": 1}', "{a: 1}", None, "3", ""])},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b", "or_equal": True},
        {"a": pa.array([LATER, NOW, NOW, None]), "b": pa.array([NOW, NOW, LATER, None])},
    ),
    (
        "expect_column_pair_values_a_to_be_greater_than_b",
        {"column_A": "a", "column_B": "b"},
        {"a": pa.array([2, 1, 1]), "b": pa.array([1, 1, 2])},
    ),
    (
        PII_EXPECTATION,
        {"types": None, "threshold": 0.5},
        {"x": pa.array(["handle with care", "call 13812345678", None])},
    ),
]


def _spec(expectation: str, kwargs: dict[str, Any], columns: dict[str, pa.Array]) -> CheckSpec:
    column = None if "column_A" in kwargs else "x"
    return CheckSpec(f"t.{expectation}", expectation, "row", column, kwargs)


def _gx_failing_rows(batch: pa.Table, spec: CheckSpec) -> list[int]:
    failing: dict[int, list[CheckSpec]] = {}
    QualityStage({})._gx_failing_rows(batch, "t", [spec], failing)
    return sorted(failing)


@pytest.mark.parametrize(("expectation", "kwargs", "columns"), VECTORS)
def test_native_row_checks_name_the_rows_gx_names(
    expectation: str, kwargs: dict[str, Any], columns: dict[str, pa.Array]
) -> None:
    batch = pa.table(columns)
    spec = _spec(expectation, kwargs, columns)
    native = native_failing_rows(batch, spec)
    assert native is not None, "the vector should be evaluated natively"
    assert native == _gx_failing_rows(batch, spec)
    assert native, "each vector has at least one failing row"


@pytest.mark.parametrize(
    ("expectation", "kwargs", "columns"),
    [
        # An argument the native checks do not evaluate.
        ("expect_column_values_to_not_be_null", {"mostly": 0.5}, {"x": pa.array([1, None])}),
        # A type they do not cover (GX parses timestamps against string bounds).
        (
            "expect_column_values_to_be_between",
            {"min_value": "2026-01-01"},
            {"x": pa.array([NOW])},
        ),
        # One value of a pair missing: GX's pandas comparison decides.
        (
            "expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": "a", "column_B": "b"},
            {"a": pa.array([2, None]), "b": pa.array([1, 1])},
        ),
        # A regex Python cannot compile: GX reports the check as unable to run.
        ("expect_column_values_to_match_regex", {"regex": "("}, {"x": pa.array(["a"])}),
    ],
)
def test_cases_the_native_checks_do_not_cover_go_to_gx(
    expectation: str, kwargs: dict[str, Any], columns: dict[str, pa.Array]
) -> None:
    assert native_failing_rows(pa.table(columns), _spec(expectation, kwargs, columns)) is None
