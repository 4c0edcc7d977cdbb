"""Composition equals opacus's own accountants for the same mechanisms (no mocks)."""

from __future__ import annotations

from itertools import pairwise

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from privacy.accounting import (
    GaussianMechanism,
    LaplaceMechanism,
    compose,
    gaussian_noise_multiplier,
    laplace_rdp,
)

DELTA = 1e-5


def _steps(accountant: RDPAccountant | PRVAccountant) -> RDPAccountant | PRVAccountant:
    # The same history, built the way opacus builds it during training: one step at a time.
    for _ in range(300):
        accountant.step(noise_multiplier=1.1, sample_rate=0.01)
    accountant.step(noise_multiplier=3.0, sample_rate=1.0)
    return accountant


MECHANISMS = [
    GaussianMechanism(noise_multiplier=1.1, sample_rate=0.01, steps=300),
    GaussianMechanism(noise_multiplier=3.0),
]


def test_rdp_composition_equals_opacus() -> None:
    expected = _steps(RDPAccountant()).get_epsilon(delta=DELTA)
    assert compose(MECHANISMS, DELTA, "rdp") == pytest.approx(expected, rel=1e-12)


def test_prv_composition_equals_opacus() -> None:
    expected = _steps(PRVAccountant()).get_epsilon(delta=DELTA)
    assert compose(MECHANISMS, DELTA, "prv") == pytest.approx(expected, rel=1e-9)


def test_composition_is_tighter_than_adding_epsilons() -> None:
    one = compose([GaussianMechanism(noise_multiplier=2.0)], DELTA)
    ten = compose([GaussianMechanism(noise_multiplier=2.0, steps=10)], DELTA)
    assert one < ten < 10 * one


def test_laplace_rdp_is_bounded_by_epsilon_and_grows_with_order() -> None:
    curve = laplace_rdp(1.0, [1.5, 2, 8, 32, 64])
    assert all(0 < a <= b <= 1.0 for a, b in pairwise(curve))


def test_laplace_composition() -> None:
    # One pure release keeps its face value; many compose below the sum through RDP.
    assert compose([LaplaceMechanism(epsilon=1.0)], DELTA) == 1.0
    many = compose([LaplaceMechanism(epsilon=0.1, count=100)], DELTA)
    assert many < 10.0
    mixed = compose([*MECHANISMS, LaplaceMechanism(epsilon=0.5)], DELTA)
    assert compose(MECHANISMS, DELTA) < mixed <= compose(MECHANISMS, DELTA) + 0.5


def test_gaussian_calibration_round_trips_through_the_accountant() -> None:
    sigma = gaussian_noise_multiplier(1.0, DELTA)
    assert compose([GaussianMechanism(noise_multiplier=sigma)], DELTA) == pytest.approx(
        1.0, abs=0.01
    )
