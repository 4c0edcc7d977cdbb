"""Privacy cost of mechanisms and their composition, computed with opacus's accountants.

A charge is a list of mechanisms, each stored as data (``Mechanism``) so the ledger can
replay a dataset's whole history through an accountant:

- ``gaussian``: the sampled Gaussian mechanism as opacus records it, ``(noise_multiplier,
  sample_rate, steps)``. A one-off Gaussian release is ``sample_rate=1, steps=1`` with
  ``noise_multiplier = sigma / l2_sensitivity``; DP-SGD is the same with its own rate and steps.
- ``laplace``: ``count`` releases of a pure ``epsilon``-DP Laplace mechanism.

Composition is never a sum of epsilons over Gaussian mechanisms: with ``rdp`` the RDP curves
of all mechanisms are added (opacus's ``compute_rdp`` for Gaussians, Mironov's closed form
for Laplace) and converted once by opacus; with ``prv`` opacus's PRV accountant composes
the Gaussians numerically. A pure Laplace release also satisfies its own ``(epsilon, 0)``,
so the result is the smaller of the accountant's answer and the bound that keeps Laplace
mechanisms at their face value (``gaussian epsilon + sum of Laplace epsilons``); both are
valid guarantees, and for a few Laplace releases the RDP conversion alone would overstate.

opacus imports torch, so this module imports it only inside the functions that compose.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from pipelines.config_types import StrictModel


class GaussianMechanism(StrictModel):
    kind: Literal["gaussian"] = "gaussian"
    noise_multiplier: float = Field(gt=0)
    sample_rate: float = Field(default=1.0, gt=0, le=1)
    steps: int = Field(default=1, ge=1)


class LaplaceMechanism(StrictModel):
    kind: Literal["laplace"] = "laplace"
    epsilon: float = Field(gt=0)
    count: int = Field(default=1, ge=1)


Mechanism = Annotated[GaussianMechanism | LaplaceMechanism, Field(discriminator="kind")]
MECHANISMS: TypeAdapter[list[Mechanism]] = TypeAdapter(list[Mechanism])


def laplace_rdp(epsilon: float, orders: Sequence[float]) -> list[float]:
    """RDP of the Laplace mechanism with ``b = sensitivity / epsilon`` (Mironov 2017, Prop. 6).

    ``D_a = 1/(a-1) * log(a/(2a-1) * e^((a-1)eps) + (a-1)/(2a-1) * e^(-a*eps))``, computed
    in log space so large orders do not overflow; never more than ``epsilon``.
    """
    curve = []
    for a in orders:
        first = math.log(a / (2 * a - 1)) + (a - 1) * epsilon
        second = math.log((a - 1) / (2 * a - 1)) - a * epsilon
        top = max(first, second)
        log_sum = top + math.log(math.exp(first - top) + math.exp(second - top))
        curve.append(min(epsilon, log_sum / (a - 1)))
    return curve


def _gaussian_history(mechanisms: Sequence[Mechanism]) -> list[tuple[float, float, int]]:
    return [
        (m.noise_multiplier, m.sample_rate, m.steps)
        for m in mechanisms
        if isinstance(m, GaussianMechanism)
    ]


def _laplace(mechanisms: Sequence[Mechanism]) -> list[LaplaceMechanism]:
    return [m for m in mechanisms if isinstance(m, LaplaceMechanism)]


def _gaussian_epsilon(
    history: list[tuple[float, float, int]], delta: float, accountant: str
) -> float:
    if not history:
        return 0.0
    from opacus.accountants import PRVAccountant, RDPAccountant

    acc = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    acc.history = list(history)
    with warnings.catch_warnings():
        # PRV takes log(1 - q) for q = 1 (a full-data release); numpy warns, the result holds.
        # RDP warns when the best order is its largest; composition is still a valid bound.
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        return float(acc.get_epsilon(delta=delta))


def compose(mechanisms: Sequence[Mechanism], delta: float, accountant: str = "rdp") -> float:
    """The epsilon at ``delta`` of all ``mechanisms`` together (0 for none)."""
    if not mechanisms:
        return 0.0
    history = _gaussian_history(mechanisms)
    laplace = _laplace(mechanisms)
    gaussian_eps = _gaussian_epsilon(history, delta, accountant)
    face_value = gaussian_eps + sum(m.epsilon * m.count for m in laplace)
    if accountant != "rdp" or not laplace:
        return face_value
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis import rdp as rdp_analysis

    orders = RDPAccountant.DEFAULT_ALPHAS
    curve = [0.0] * len(orders)
    for noise_multiplier, sample_rate, steps in history:
        gaussian = rdp_analysis.compute_rdp(
            q=sample_rate, noise_multiplier=noise_multiplier, steps=steps, orders=orders
        )
        curve = [c + float(g) for c, g in zip(curve, gaussian, strict=True)]
    for m in laplace:
        curve = [
            c + m.count * r for c, r in zip(curve, laplace_rdp(m.epsilon, orders), strict=True)
        ]
    with warnings.catch_warnings():
        # "Optimal order is the largest alpha" is expected for pure-DP Laplace curves; the
        # face-value bound below covers the case where more orders would have helped.
        warnings.simplefilter("ignore", UserWarning)
        eps, _ = rdp_analysis.get_privacy_spent(orders=orders, rdp=curve, delta=delta)
    return min(float(eps), face_value)


def gaussian_noise_multiplier(
    epsilon: float, delta: float, accountant: str = "rdp", *, steps: int = 1
) -> float:
    """The noise multiplier that makes ``steps`` full-data Gaussian releases cost ``epsilon``.

    Calibrated with the same opacus accountant the ledger composes with, so a release
    declared at ``epsilon`` is charged ``epsilon`` (within opacus's search tolerance).
    """
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "optimal order is the largest alpha"
        sigma = get_noise_multiplier(
            target_epsilon=epsilon,
            target_delta=delta,
            sample_rate=1.0,
            steps=steps,
            accountant=accountant,
            epsilon_tolerance=0.005,
        )
    return float(sigma)
