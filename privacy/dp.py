"""Differential-privacy noise on numeric values, with declared clipping bounds.

Values are clipped to ``[lower, upper]`` before noise, so one person changes a released value
by at most ``upper - lower`` (the sensitivity); the noise scale follows from it. Each function
returns the noisy values and the ``Mechanism`` the ledger charges for them.

The generator defaults to fresh OS entropy. Tests pass a seeded ``numpy.random.Generator``;
production must not, or the noise could be replayed and subtracted. numpy's floating-point
samplers are not hardened against the Mironov (2012) least-significant-bit attack; see the
README's privacy section for what that means for releases.
"""

from __future__ import annotations

import numpy as np

from privacy.accounting import GaussianMechanism, LaplaceMechanism


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng()


def clip(values: np.ndarray, lower: float, upper: float) -> np.ndarray:
    if upper <= lower:
        raise ValueError(f"clipping bounds must satisfy lower < upper, got [{lower}, {upper}]")
    return np.clip(values.astype(np.float64), lower, upper)


def laplace(
    values: np.ndarray,
    *,
    epsilon: float,
    sensitivity: float,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, LaplaceMechanism]:
    """Add Laplace noise of scale ``sensitivity / epsilon`` (``epsilon``-DP per release)."""
    if epsilon <= 0 or sensitivity <= 0:
        raise ValueError("epsilon and sensitivity must be positive")
    noise = _rng(rng).laplace(0.0, sensitivity / epsilon, size=values.shape)
    return values + noise, LaplaceMechanism(epsilon=epsilon)


def gaussian(
    values: np.ndarray,
    *,
    noise_multiplier: float,
    sensitivity: float,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, GaussianMechanism]:
    """Add Gaussian noise of sd ``noise_multiplier * sensitivity`` (L2 sensitivity).

    ``accounting.gaussian_noise_multiplier(epsilon, delta)`` gives the multiplier for a
    target ``(epsilon, delta)``.
    """
    if noise_multiplier <= 0 or sensitivity <= 0:
        raise ValueError("noise_multiplier and sensitivity must be positive")
    noise = _rng(rng).normal(0.0, noise_multiplier * sensitivity, size=values.shape)
    return values + noise, GaussianMechanism(noise_multiplier=noise_multiplier)


def noisy_values(
    values: np.ndarray,
    *,
    mechanism: str,
    lower: float,
    upper: float,
    epsilon: float,
    noise_multiplier: float | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, LaplaceMechanism | GaussianMechanism]:
    """Clip each value to its bounds and release it with noise (one release per value)."""
    clipped = clip(values, lower, upper)
    sensitivity = upper - lower
    if mechanism == "laplace":
        return laplace(clipped, epsilon=epsilon, sensitivity=sensitivity, rng=rng)
    if noise_multiplier is None:
        raise ValueError("gaussian noise needs a noise_multiplier")
    return gaussian(clipped, noise_multiplier=noise_multiplier, sensitivity=sensitivity, rng=rng)
