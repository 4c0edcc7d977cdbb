"""DP aggregate releases: counts, sums and means by group, bounded per privacy unit.

Contribution bounding makes the sensitivity a property of the query, not of the data: each
privacy unit (e.g. a customer) keeps at most ``max_groups`` of its groups and at most
``max_rows`` rows in each, chosen at random, and every value is clipped to ``[lower, upper]``.
Then one unit changes the count vector by at most ``max_groups * max_rows`` in L1 and
``sqrt(max_groups) * max_rows`` in L2, and a sum by that times ``max(|lower|, |upper|)``.

Group keys are public and declared (``groups``): releasing only the groups that happen to
occur would leak who is in the data. Declared groups with no rows still get a noisy value.
A mean is a noisy sum over a noisy count, each with half the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy.accounting import GaussianMechanism, LaplaceMechanism, gaussian_noise_multiplier
from privacy.dp import gaussian, laplace


class AggregateSpec(BaseModel):
    """One DP aggregate release (a section of a release config, validated at the edge)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["count", "sum", "mean"]
    group_by: str
    privacy_unit: str
    groups: list[str] = Field(min_length=1)
    value: str | None = None
    lower: float | None = None
    upper: float | None = None
    max_groups: int = Field(default=1, ge=1)
    max_rows: int = Field(default=1, ge=1)
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    epsilon: float = Field(gt=0)
    delta: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self) -> AggregateSpec:
        if self.kind != "count" and (
            self.value is None or self.lower is None or self.upper is None
        ):
            raise ValueError(f"{self.kind} needs value, lower and upper")
        if self.lower is not None and self.upper is not None and self.upper <= self.lower:
            raise ValueError("upper must be greater than lower")
        if (self.mechanism == "gaussian") != (self.delta is not None):
            raise ValueError("delta is required for gaussian and not allowed for laplace")
        return self


@dataclass(frozen=True)
class AggregateRelease:
    table: pa.Table
    mechanisms: list[LaplaceMechanism | GaussianMechanism]


def bound_contributions(table: pa.Table, spec: AggregateSpec, rng: np.random.Generator) -> pa.Table:
    """Rows kept after contribution bounding (at most max_groups * max_rows per unit)."""
    known = pc.is_in(table[spec.group_by].cast(pa.string()), value_set=pa.array(spec.groups))
    rows = table.filter(pc.fill_null(known, False))
    # A random order, then the first rows per (unit, group) and the first groups per unit:
    # random so the kept rows do not depend on how the data happened to be sorted.
    order = rng.permutation(rows.num_rows)
    units = rows[spec.privacy_unit].to_pylist()
    groups = rows[spec.group_by].cast(pa.string()).to_pylist()
    unit_groups: dict[object, list[str]] = {}
    per_cell: dict[tuple[object, str], int] = {}
    keep = []
    for i in order.tolist():
        unit, group = units[i], groups[i]
        chosen = unit_groups.setdefault(unit, [])
        if group not in chosen:
            if len(chosen) >= spec.max_groups:
                continue
            chosen.append(group)
        cell = (unit, group)
        if per_cell.get(cell, 0) >= spec.max_rows:
            continue
        per_cell[cell] = per_cell.get(cell, 0) + 1
        keep.append(i)
    return rows.take(pa.array(sorted(keep), pa.int64()))


def dp_aggregate(
    table: pa.Table, spec: AggregateSpec, *, rng: np.random.Generator | None = None
) -> AggregateRelease:
    """The noisy aggregate per declared group, and the mechanisms to charge for it."""
    generator = rng if rng is not None else np.random.default_rng()
    rows = bound_contributions(table, spec, generator)
    index = {g: i for i, g in enumerate(spec.groups)}
    slots = np.array([index[g] for g in rows[spec.group_by].cast(pa.string()).to_pylist()], int)
    counts = np.bincount(slots, minlength=len(spec.groups)).astype(np.float64)
    per_unit = spec.max_groups * spec.max_rows
    l1, l2 = float(per_unit), math.sqrt(spec.max_groups) * spec.max_rows
    queries = 2 if spec.kind == "mean" else 1
    noise = _Noise(spec, generator, queries)
    columns: dict[str, Sequence[object]] = {spec.group_by: spec.groups}
    if spec.kind in ("count", "mean"):
        noisy_counts = noise.add(counts, l1, l2)
    if spec.kind in ("sum", "mean"):
        assert spec.value is not None and spec.lower is not None and spec.upper is not None
        values = np.clip(
            rows[spec.value].cast(pa.float64()).fill_null(0.0).to_numpy(), spec.lower, spec.upper
        )
        sums = np.bincount(slots, weights=values, minlength=len(spec.groups))
        bound = max(abs(spec.lower), abs(spec.upper))
        noisy_sums = noise.add(sums, l1 * bound, l2 * bound)
    if spec.kind == "count":
        columns["dp_count"] = np.maximum(noisy_counts, 0).round().tolist()
    elif spec.kind == "sum":
        columns["dp_sum"] = noisy_sums.tolist()
    else:
        # Post-processing: a mean of a near-empty group is clamped into the value range.
        safe = np.maximum(noisy_counts, 1.0)
        columns["dp_mean"] = np.clip(noisy_sums / safe, spec.lower, spec.upper).tolist()
        columns["dp_count"] = np.maximum(noisy_counts, 0).round().tolist()
    return AggregateRelease(pa.table(columns), noise.mechanisms)


class _Noise:
    """Splits the spec's budget evenly over ``queries`` releases and records each one."""

    def __init__(self, spec: AggregateSpec, rng: np.random.Generator, queries: int):
        self.spec = spec
        self.rng = rng
        self.mechanisms: list[LaplaceMechanism | GaussianMechanism] = []
        if spec.mechanism == "laplace":
            self.epsilon = spec.epsilon / queries
        else:
            assert spec.delta is not None
            self.noise_multiplier = gaussian_noise_multiplier(
                spec.epsilon, spec.delta, steps=queries
            )

    def add(self, values: np.ndarray, l1: float, l2: float) -> np.ndarray:
        if self.spec.mechanism == "laplace":
            noisy, mechanism = laplace(values, epsilon=self.epsilon, sensitivity=l1, rng=self.rng)
        else:
            noisy, mechanism = gaussian(
                values, noise_multiplier=self.noise_multiplier, sensitivity=l2, rng=self.rng
            )
        self.mechanisms.append(mechanism)
        return noisy
