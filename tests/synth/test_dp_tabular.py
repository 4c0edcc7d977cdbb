"""``dp-tabular``: real opacus DP-SGD, charged to the real budget ledger, on a real lake."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.config import LakeConfig
from pipelines.errors import BudgetExceeded
from pipelines.lake import Lake
from privacy.accounting import LaplaceMechanism
from privacy.ledger import BudgetLedger
from privacy.policy import Budget
from synth.config import SynthConfig, SynthTask
from synth.generate import generate_task
from synth.queue import ReviewQueue, Selection

pytestmark = [
    # opacus without torchcsprng, and its per-sample hooks on a first layer whose input needs
    # no gradient: both expected here, neither a problem for the test.
    pytest.mark.filterwarnings("ignore:Secure RNG turned off:UserWarning"),
    pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning"),
]

BUDGET = {"privacy_unit": "patient_id", "epsilon": 8.0, "delta": 1e-5}


def _orders(count: int) -> list[dict]:
    """Medical orders where the rare order type has its own age and dose profile."""
    rng = random.Random(5)
    rows = []
    for i in range(count):
        rare = i % 8 == 0
        age = rng.gauss(72 if rare else 45, 8)
        rows.append(
            {
                "order_id": f"O{i:04d}",
                "order_type": "isolation" if rare else rng.choice(["lab", "imaging"]),
                "age": max(0, min(99, round(age))),
                "dose_mg": round(max(0.0, rng.gauss(age * 5, 40)), 1),
                "department": "icu" if rare and rng.random() < 0.8 else rng.choice(["er", "ward"]),
            }
        )
    return rows


@pytest.fixture
def tabular_lake(tmp_path: Path) -> Lake:
    lake = Lake(LakeConfig(root=tmp_path / "lake"))
    lake.prepare()
    lake.catalog.create_namespace_if_not_exists("curated")
    now = datetime.now(UTC)
    rows = [
        {**r, "_source_key": r["order_id"], "_entity": "medical_orders", "_ingested_at": now}
        for r in _orders(240)
    ]
    data = pa.Table.from_pylist(rows)
    lake.catalog.create_table("curated.medical_orders", schema=data.schema).append(data)
    return lake


def _task(**backend: object) -> SynthTask:
    config = SynthConfig.model_validate(
        {
            "tasks": [
                {
                    "name": "rare_orders",
                    "dataset": "medical_orders",
                    "label_field": "order_type",
                    "labels": ["isolation"],
                    "per_label": 30,
                    "filters": {"rule_packs": ["common"], "entity": "medical_orders"},
                    "backend": {
                        "kind": "dp-tabular",
                        "columns": [
                            {
                                "name": "order_type",
                                "kind": "categorical",
                                "values": ["lab", "imaging", "isolation"],
                            },
                            {"name": "age", "kind": "numeric", "min": 0, "max": 100, "bins": 10},
                            {
                                "name": "dose_mg",
                                "kind": "numeric",
                                "min": 0,
                                "max": 800,
                                "bins": 8,
                                "decimals": 1,
                            },
                            {
                                "name": "department",
                                "kind": "categorical",
                                "values": ["er", "ward", "icu"],
                            },
                        ],
                        "budget": BUDGET,
                        "epochs": 4,
                        "batch_size": 32,
                        "learning_rate": 0.1,
                        **backend,
                    },
                }
            ]
        }
    )
    return config.tasks[0]


def test_dp_tabular_charges_the_ledger_and_reports_fidelity(tabular_lake: Lake) -> None:
    task = _task(epsilon=3.0)
    report = generate_task(tabular_lake, task, None, run_id="dp1")
    backend = report.backend
    assert 0 < backend["epsilon"] <= 3.0 + 1e-6
    assert backend["trained_rows"] == 240 and backend["skipped_invalid_rows"] == 0
    fidelity = backend["fidelity"]
    assert set(fidelity["marginal_tvd"]) == {"order_type", "age", "dose_mg", "department"}
    assert 0 <= fidelity["mean_marginal_tvd"] <= 1
    assert "age~dose_mg" in fidelity["pairwise_cramers_v"]
    assert fidelity["numeric_correlation"]["columns"] == ["age", "dose_mg"]

    ledger = BudgetLedger.for_lake(tabular_lake.config.root)
    (charge,) = ledger.charges("medical_orders")
    assert charge["status"] == "committed" and charge["kind"] == "dp_sgd"
    assert charge["reference"] == "synth:rare_orders:dp1"
    assert backend["dataset_epsilon_spent"] == pytest.approx(charge["epsilon_after"], abs=1e-3)

    assert report.filters.balanced and report.filters.generated == 30
    samples = ReviewQueue(tabular_lake).samples(Selection(task="rare_orders", status=None))
    assert len(samples) == report.queued > 0
    for s in samples:
        assert s.text is None and s.seed_keys == [] and s.generator == "dp-tabular"
        assert s.record["order_type"] == "isolation" and 0 <= s.record["age"] <= 100
        assert s.generator_params["sample"]["epsilon"] == backend["epsilon"]


def test_dp_tabular_refuses_to_train_past_the_budget(tabular_lake: Lake) -> None:
    ledger = BudgetLedger.for_lake(tabular_lake.config.root)
    budget = Budget(**BUDGET)
    ledger.commit(
        ledger.reserve(
            "medical_orders",
            budget,
            [LaplaceMechanism(epsilon=7.99)],
            kind="release",
            description="earlier counts",
        )
    )
    with pytest.raises(BudgetExceeded):
        generate_task(tabular_lake, _task(), None, run_id="dp2")
    assert [c["status"] for c in ledger.charges("medical_orders")] == ["committed"]
