"""DP-SGD within a dataset's remaining privacy budget, for the synth stage and trainers.

``make_private_within_budget`` picks the noise multiplier so that the planned training,
composed with everything the dataset has already spent, lands at the budget (or at a smaller
``epsilon``), reserves that charge in the ledger, and hands back opacus's private module,
optimizer and data loader. ``PrivateTraining.commit()`` settles the charge with the steps
actually taken once the model is saved; ``cancel()`` frees it if training is abandoned.

torch and opacus are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.errors import BudgetExceeded
from privacy.accounting import GaussianMechanism, Mechanism, compose
from privacy.ledger import BudgetLedger, Reservation
from privacy.policy import Budget

if TYPE_CHECKING:
    from opacus import PrivacyEngine

# Noise multipliers searched for the budget; above the top the model learns nothing useful,
# so a budget that needs more is refused rather than burnt.
_SIGMA_LOW, _SIGMA_HIGH = 0.3, 64.0


def noise_multiplier_for_budget(
    history: Sequence[Mechanism],
    budget: Budget,
    *,
    sample_rate: float,
    steps: int,
    epsilon: float | None = None,
    tolerance: float = 0.01,
) -> float:
    """The smallest noise multiplier whose training fits the budget after ``history``.

    ``epsilon`` caps the total (history included) below the budget's. Bisection on the
    composed epsilon, which falls as the noise multiplier grows.
    """
    target = min(epsilon if epsilon is not None else budget.epsilon, budget.epsilon)

    def total(sigma: float) -> float:
        step = GaussianMechanism(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps)
        return compose([*history, step], budget.delta, budget.accountant)

    if total(_SIGMA_HIGH) > target:
        spent = compose(history, budget.delta, budget.accountant)
        raise BudgetExceeded(
            f"DP-SGD: {steps} steps at sample rate {sample_rate:g} cannot fit: the dataset has"
            f" spent {spent:.3f} of {target:g} and even noise multiplier {_SIGMA_HIGH:g} would"
            f" exceed it",
            stage="privacy",
        )
    low, high = _SIGMA_LOW, _SIGMA_HIGH
    if total(low) <= target:
        return low
    while high - low > tolerance:
        mid = (low + high) / 2
        if total(mid) <= target:
            high = mid
        else:
            low = mid
    return high


@dataclass
class PrivateTraining:
    """opacus's private triple plus the reserved charge that pays for it."""

    module: Any
    optimizer: Any
    data_loader: Any
    engine: PrivacyEngine
    noise_multiplier: float
    ledger: BudgetLedger
    reservation: Reservation
    settled: bool = field(default=False)

    def commit(self, reference: str | None = None) -> None:
        """Charge the steps actually taken (opacus's accountant history) and settle."""
        actual = [
            GaussianMechanism(noise_multiplier=nm, sample_rate=q, steps=n)
            for nm, q, n in self.engine.accountant.history
        ]
        if actual:
            self.ledger.commit(self.reservation, reference=reference, mechanisms=actual)
        else:
            self.ledger.cancel(self.reservation)
        self.settled = True

    def cancel(self) -> None:
        self.ledger.cancel(self.reservation)
        self.settled = True


def make_private_within_budget(
    ledger: BudgetLedger,
    dataset: str,
    budget: Budget,
    *,
    module: Any,
    optimizer: Any,
    data_loader: Any,
    epochs: int,
    max_grad_norm: float,
    epsilon: float | None = None,
    description: str = "DP-SGD training",
    run_id: str | None = None,
    **make_private_kwargs: Any,
) -> PrivateTraining:
    """Wrap a model for DP-SGD with a noise multiplier taken from the remaining budget.

    Raises ``BudgetExceeded`` before training when the budget cannot pay for ``epochs``.
    """
    from opacus import PrivacyEngine

    sample_rate = 1 / len(data_loader)
    steps = epochs * len(data_loader)
    history = ledger.history(dataset, budget.privacy_unit)
    sigma = noise_multiplier_for_budget(
        history, budget, sample_rate=sample_rate, steps=steps, epsilon=epsilon
    )
    planned = GaussianMechanism(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps)
    reservation = ledger.reserve(
        dataset, budget, [planned], kind="dp_sgd", description=description, run_id=run_id
    )
    engine = PrivacyEngine(accountant=budget.accountant)
    try:
        private_module, private_optimizer, private_loader = engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=data_loader,
            noise_multiplier=sigma,
            max_grad_norm=max_grad_norm,
            **make_private_kwargs,
        )
    except BaseException:
        ledger.cancel(reservation)
        raise
    return PrivateTraining(
        private_module,
        private_optimizer,
        private_loader,
        engine,
        sigma,
        ledger,
        reservation,
    )
