"""DP noise matches its declared scale (fixed seed, statistical tolerance) and clips first."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privacy.dp import gaussian, laplace, noisy_values

N = 200_000


def test_laplace_noise_has_scale_sensitivity_over_epsilon() -> None:
    rng = np.random.default_rng(7)
    noisy, mechanism = laplace(np.zeros(N), epsilon=0.5, sensitivity=3.0, rng=rng)
    scale = 3.0 / 0.5
    # For Laplace(b): mean |x| = b and var = 2 b^2. With N = 200k the standard error of the
    # mean absolute deviation is b / sqrt(N) ~ 0.2 % of b, so 2 % is a wide, stable margin.
    assert np.mean(np.abs(noisy)) == pytest.approx(scale, rel=0.02)
    assert np.var(noisy) == pytest.approx(2 * scale**2, rel=0.03)
    assert abs(np.mean(noisy)) < 0.05 * scale
    assert mechanism.epsilon == 0.5


def test_gaussian_noise_has_sd_multiplier_times_sensitivity() -> None:
    rng = np.random.default_rng(7)
    noisy, mechanism = gaussian(np.zeros(N), noise_multiplier=1.5, sensitivity=2.0, rng=rng)
    assert np.std(noisy) == pytest.approx(3.0, rel=0.01)
    # Gaussian tails: about 4.55 % of draws lie beyond 2 sd.
    assert np.mean(np.abs(noisy) > 6.0) == pytest.approx(math.erfc(2 / math.sqrt(2)), rel=0.05)
    assert mechanism.noise_multiplier == 1.5


def test_values_are_clipped_before_noise() -> None:
    rng = np.random.default_rng(1)
    values = np.full(N, 1_000_000.0)
    noisy, _ = noisy_values(values, mechanism="laplace", lower=0, upper=10, epsilon=1.0, rng=rng)
    assert np.mean(noisy) == pytest.approx(10.0, abs=0.1)


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        laplace(np.zeros(1), epsilon=0, sensitivity=1)
    with pytest.raises(ValueError, match="lower < upper"):
        noisy_values(np.zeros(1), mechanism="laplace", lower=1, upper=1, epsilon=1)
