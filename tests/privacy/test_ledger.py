"""The budget ledger: reserve, commit, cancel, refusal over budget, cached status."""

from __future__ import annotations

from pathlib import Path

import pytest
from opacus.accountants import RDPAccountant

from pipelines.errors import BudgetExceeded, ExitCode
from privacy.accounting import GaussianMechanism, LaplaceMechanism
from privacy.ledger import BudgetLedger
from privacy.policy import Budget

BUDGET = Budget(privacy_unit="customer_id", epsilon=2.0, delta=1e-5)
RELEASE = [GaussianMechanism(noise_multiplier=4.0)]


@pytest.fixture
def ledger(tmp_path: Path) -> BudgetLedger:
    return BudgetLedger.for_lake(tmp_path)


def test_committed_charges_compose_like_opacus(ledger: BudgetLedger) -> None:
    for _ in range(3):
        with ledger.charge("orders", BUDGET, RELEASE, kind="release", description="counts"):
            pass
    expected = RDPAccountant()
    for _ in range(3):
        expected.step(noise_multiplier=4.0, sample_rate=1.0)
    (status,) = ledger.status()
    assert status.spent_epsilon == pytest.approx(expected.get_epsilon(delta=1e-5), rel=1e-12)
    assert status.spent_epsilon == status.reserved_epsilon and status.charges == 3
    assert status.remaining_epsilon == pytest.approx(2.0 - status.spent_epsilon)


def test_over_budget_is_refused_before_anything_is_held(ledger: BudgetLedger) -> None:
    ledger.commit(
        ledger.reserve(
            "orders", BUDGET, [LaplaceMechanism(epsilon=1.5)], kind="release", description="first"
        )
    )
    written = []
    with (
        pytest.raises(BudgetExceeded, match=r"from 1\.500 to 2\.500.*budget is 2") as refused,
        ledger.charge(
            "orders", BUDGET, [LaplaceMechanism(epsilon=1.0)], kind="release", description="big"
        ),
    ):
        written.append("should not happen")
    assert refused.value.exit_code == ExitCode.BUDGET and written == []
    assert [c["status"] for c in ledger.charges("orders")] == ["committed"]


def test_reservations_count_until_cancelled(ledger: BudgetLedger) -> None:
    held = ledger.reserve(
        "orders", BUDGET, [LaplaceMechanism(epsilon=1.5)], kind="release", description="in flight"
    )
    (status,) = ledger.status("orders")
    assert status.spent_epsilon == 0 and status.reserved_epsilon == 1.5
    with pytest.raises(BudgetExceeded):
        ledger.reserve(
            "orders",
            BUDGET,
            [LaplaceMechanism(epsilon=1.0)],
            kind="release",
            description="concurrent",
        )
    ledger.cancel(held)
    assert ledger.status("orders")[0].reserved_epsilon == 0
    ledger.reserve(
        "orders",
        BUDGET,
        [LaplaceMechanism(epsilon=1.0)],
        kind="release",
        description="after cancel",
    )


def test_a_failed_publish_cancels_its_charge(ledger: BudgetLedger) -> None:
    with (
        pytest.raises(RuntimeError),
        ledger.charge("orders", BUDGET, RELEASE, kind="release", description="boom"),
    ):
        raise RuntimeError("write failed")
    assert [c["status"] for c in ledger.charges("orders")] == ["cancelled"]
    assert ledger.status("orders")[0].reserved_epsilon == 0


def test_budgets_are_per_dataset_and_privacy_unit(ledger: BudgetLedger) -> None:
    other_unit = BUDGET.model_copy(update={"privacy_unit": "store_id"})
    for budget in (BUDGET, other_unit):
        ledger.commit(
            ledger.reserve(
                "orders", budget, [LaplaceMechanism(epsilon=1.9)], kind="release", description="x"
            )
        )
    ledger.commit(
        ledger.reserve(
            "payments", BUDGET, [LaplaceMechanism(epsilon=1.9)], kind="release", description="x"
        )
    )
    assert [(s.dataset, s.privacy_unit) for s in ledger.status()] == [
        ("orders", "customer_id"),
        ("orders", "store_id"),
        ("payments", "customer_id"),
    ]


def test_reading_an_absent_ledger_creates_nothing(tmp_path: Path) -> None:
    ledger = BudgetLedger.for_lake(tmp_path / "lake")
    assert ledger.status() == [] and not ledger.path.exists()
