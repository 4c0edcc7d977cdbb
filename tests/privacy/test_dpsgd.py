"""DP-SGD within the remaining budget: real opacus, a tiny model, a few steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pipelines.errors import BudgetExceeded
from privacy.accounting import LaplaceMechanism, compose
from privacy.dpsgd import make_private_within_budget
from privacy.ledger import BudgetLedger
from privacy.policy import Budget

BUDGET = Budget(privacy_unit="customer_id", epsilon=3.0, delta=1e-5)


def parts() -> tuple[torch.nn.Module, torch.optim.Optimizer, DataLoader]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    data = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    return model, torch.optim.SGD(model.parameters(), lr=0.1), DataLoader(data, batch_size=16)


def test_training_spends_what_is_left_and_commits_actual_steps(tmp_path: Path) -> None:
    ledger = BudgetLedger.for_lake(tmp_path)
    ledger.commit(
        ledger.reserve(
            "orders", BUDGET, [LaplaceMechanism(epsilon=1.0)], kind="release", description="counts"
        )
    )
    model, optimizer, loader = parts()
    training = make_private_within_budget(
        ledger,
        "orders",
        BUDGET,
        module=model,
        optimizer=optimizer,
        data_loader=loader,
        epochs=2,
        max_grad_norm=1.0,
    )
    planned = ledger.status("orders")[0].reserved_epsilon
    assert 2.9 <= planned <= 3.0  # the noise was chosen to land at the budget
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(2):
        for x, y in training.data_loader:
            training.optimizer.zero_grad()
            loss_fn(training.module(x), y).backward()
            training.optimizer.step()
    training.commit(reference="model v1")
    (status,) = ledger.status("orders")
    assert status.spent_epsilon == status.reserved_epsilon <= 3.0
    assert status.spent_epsilon == pytest.approx(
        compose(ledger.history("orders", "customer_id"), BUDGET.delta), rel=1e-12
    )


def test_refused_before_training_when_nothing_is_left(tmp_path: Path) -> None:
    ledger = BudgetLedger.for_lake(tmp_path)
    ledger.commit(
        ledger.reserve(
            "orders",
            BUDGET,
            [LaplaceMechanism(epsilon=3.0)],
            kind="release",
            description="everything",
        )
    )
    model, optimizer, loader = parts()
    with pytest.raises(BudgetExceeded, match="cannot fit"):
        make_private_within_budget(
            ledger,
            "orders",
            BUDGET,
            module=model,
            optimizer=optimizer,
            data_loader=loader,
            epochs=1,
            max_grad_norm=1.0,
        )
    assert [c["status"] for c in ledger.charges("orders")] == ["committed"]
