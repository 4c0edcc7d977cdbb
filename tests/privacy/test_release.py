"""DP aggregates: contribution bounding, and publishing to a real pyiceberg catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog

from pipelines.errors import BudgetExceeded
from privacy.aggregate import AggregateSpec, bound_contributions, dp_aggregate
from privacy.ledger import BudgetLedger
from privacy.policy import Budget
from privacy.release import publish_aggregate

ROWS = pa.table(
    {
        "customer_id": ["a"] * 50 + ["b", "c", "d"],
        "city": ["sh"] * 25 + ["bj"] * 25 + ["sh", "bj", "gz"],
        "amount": [1000.0] * 50 + [10.0, 20.0, 30.0],
    }
)
COUNT = AggregateSpec(
    kind="count",
    group_by="city",
    privacy_unit="customer_id",
    groups=["sh", "bj", "gz", "sz"],
    max_groups=1,
    max_rows=2,
    epsilon=1.0,
)


def test_each_unit_contributes_at_most_its_bound() -> None:
    kept = bound_contributions(ROWS, COUNT, np.random.default_rng(0))
    per_unit = kept.group_by("customer_id").aggregate([("city", "count")]).to_pylist()
    assert {r["customer_id"]: r["city_count"] for r in per_unit} == {"a": 2, "b": 1, "c": 1, "d": 1}


def test_declared_groups_all_released_with_noise_of_the_bounded_scale() -> None:
    draws = [
        dp_aggregate(ROWS, COUNT, rng=np.random.default_rng(seed)).table["dp_count"].to_pylist()
        for seed in range(400)
    ]
    sz = np.array([d[3] for d in draws])  # no rows: pure (clamped, rounded) noise
    assert len(draws[0]) == 4
    # Laplace scale = max_groups * max_rows / epsilon = 2; P(noise >= 0.5) = exp(-0.25) / 2.
    assert np.mean(sz >= 1) == pytest.approx(np.exp(-0.5 / 2) / 2, abs=0.07)


def test_mean_is_clipped_and_charged_twice() -> None:
    spec = COUNT.model_copy(update={"kind": "mean", "value": "amount", "lower": 0, "upper": 100})
    release = dp_aggregate(ROWS, spec, rng=np.random.default_rng(1))
    assert all(0 <= m <= 100 for m in release.table["dp_mean"].to_pylist())
    assert [m.epsilon for m in release.mechanisms] == [0.5, 0.5]


def test_publish_charges_after_writing_and_refuses_over_budget(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    catalog = SqlCatalog(
        "steward",
        uri=f"sqlite:///{tmp_path / 'catalog.db'}",
        warehouse=(tmp_path / "warehouse").as_uri(),
    )
    ledger = BudgetLedger.for_lake(tmp_path)
    budget = Budget(privacy_unit="customer_id", epsilon=1.5, delta=1e-6)
    published = publish_aggregate(
        catalog,
        ledger,
        dataset="orders",
        name="orders_by_city",
        source=ROWS,
        spec=COUNT,
        budget=budget,
        rng=np.random.default_rng(0),
    )
    table = catalog.load_table("curated.orders_by_city")
    assert table.scan().to_arrow().num_rows == 4 and published.epsilon_after == 1.0
    (charge,) = ledger.charges("orders")
    assert charge["status"] == "committed"
    assert charge["reference"] == f"curated.orders_by_city@{published.snapshot_id}"
    with pytest.raises(BudgetExceeded):
        publish_aggregate(
            catalog,
            ledger,
            dataset="orders",
            name="orders_by_city",
            source=ROWS,
            spec=COUNT,
            budget=budget,
        )
    assert len(catalog.load_table("curated.orders_by_city").snapshots()) == 1  # nothing written
