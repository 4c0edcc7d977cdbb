"""Treatments: what happens to a PII span in text or to a declared field's values.

A registry keyed by the ``action`` names of the policy YAML. Each treatment is built from its
validated config and applied either to one detected span (``span``) or to a whole column of
field values (``column``). ``quarantine`` is not a rewrite: the stage sends the row away.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.errors import ConfigError
from privacy import policy as cfg
from privacy.accounting import GaussianMechanism, LaplaceMechanism, gaussian_noise_multiplier
from privacy.dp import noisy_values
from privacy.entities import ENTITY_REGISTRY
from privacy.generalize import GENERALIZERS
from privacy.keys import PseudonymKey


@dataclass(frozen=True)
class TreatmentContext:
    """What a treatment may need beyond its own config (only some use each part)."""

    key: PseudonymKey | None
    rng: np.random.Generator | None
    accountant: str


class Treatment:
    """Base: rewrites strings; ``string_only`` treatments refuse non-string columns."""

    string_only = True
    quarantines = False

    def span(self, text: str, entity: str | None) -> str | None:
        """The replacement of ``text`` (a span of type ``entity``, or a whole field value)."""
        raise NotImplementedError

    def column(self, values: Sequence[Any], entity: str | None, field: str) -> list[Any]:
        """Treat each non-null value of a declared field as one span."""
        label = entity or field.upper()
        return [None if v is None else self.span(str(v), label) for v in values]

    def mechanisms(self) -> list[LaplaceMechanism | GaussianMechanism]:
        """What applying this treatment to a release costs in privacy budget (usually nothing)."""
        return []


TreatmentFactory = Callable[[Any, TreatmentContext], Treatment]
TREATMENTS: dict[str, TreatmentFactory] = {}


def treatment(action: str) -> Callable[[TreatmentFactory], TreatmentFactory]:
    def register(factory: TreatmentFactory) -> TreatmentFactory:
        TREATMENTS[action] = factory
        return factory

    return register


def build_treatment(config: cfg.FieldTreatmentModel, context: TreatmentContext) -> Treatment:
    return TREATMENTS[config.action](config, context)


@treatment("redact")
class Redact(Treatment):
    def __init__(self, _config: cfg.Redact, _context: TreatmentContext):
        pass

    def span(self, text: str, entity: str | None) -> str:
        return f"<{entity}>"


@treatment("mask")
class Mask(Treatment):
    def __init__(self, config: cfg.Mask, _context: TreatmentContext):
        self.keep_last = config.keep_last
        self.char = config.char

    def span(self, text: str, entity: str | None) -> str:
        # Separators stay where they were so a masked card still reads as a card.
        kept = 0
        out = []
        for ch in reversed(text):
            if ch.isalnum() and kept < self.keep_last:
                out.append(ch)
                kept += 1
            elif ch.isalnum():
                out.append(self.char)
            else:
                out.append(ch)
        return "".join(reversed(out))


@treatment("pseudonymize")
class Pseudonymize(Treatment):
    def __init__(self, config: cfg.Pseudonymize, context: TreatmentContext):
        if context.key is None:
            raise ConfigError("pseudonymize needs a key; refusing to run without one")
        self.key = context.key
        self.domain = config.domain

    def span(self, text: str, entity: str | None) -> str:
        known = ENTITY_REGISTRY.get(entity or "")
        normalized = known.normalize(text) if known is not None else text.strip()
        return self.key.token(self.domain or entity or "value", normalized)


@treatment("drop")
class Drop(Treatment):
    string_only = False

    def __init__(self, _config: cfg.Drop, _context: TreatmentContext):
        pass

    def span(self, text: str, entity: str | None) -> str:
        return ""

    def column(self, values: Sequence[Any], entity: str | None, field: str) -> list[Any]:
        return [None] * len(values)


@treatment("keep")
class Keep(Treatment):
    string_only = False

    def __init__(self, _config: cfg.Keep, _context: TreatmentContext):
        pass

    def span(self, text: str, entity: str | None) -> str:
        return text

    def column(self, values: Sequence[Any], entity: str | None, field: str) -> list[Any]:
        return list(values)


@treatment("quarantine")
class Quarantine(Keep):
    quarantines = True


@treatment("generalize")
class Generalize(Treatment):
    string_only = False

    def __init__(self, config: cfg.Generalize, _context: TreatmentContext):
        self.generalize = GENERALIZERS[config.to]
        self.width = config.width

    def span(self, text: str, entity: str | None) -> str | None:
        return self.generalize(text, self.width)

    def column(self, values: Sequence[Any], entity: str | None, field: str) -> list[Any]:
        return [None if v is None else self.generalize(v, self.width) for v in values]


@treatment("noise")
class Noise(Treatment):
    string_only = False

    def __init__(self, config: cfg.Noise, context: TreatmentContext):
        self.config = config
        self.rng = context.rng
        self.noise_multiplier = (
            gaussian_noise_multiplier(config.epsilon, config.delta, context.accountant)
            if config.delta is not None
            else None
        )

    def span(self, text: str, entity: str | None) -> str | None:
        raise ConfigError("noise applies to numeric fields, not to text")

    def column(self, values: Sequence[Any], entity: str | None, field: str) -> list[Any]:
        present = [i for i, v in enumerate(values) if v is not None]
        if not present:
            return list(values)
        if not all(isinstance(values[i], int | float) for i in present):
            raise ConfigError(f"field {field}: noise needs numeric values")
        noisy, _ = noisy_values(
            np.array([values[i] for i in present], dtype=np.float64),
            mechanism=self.config.mechanism,
            lower=self.config.lower,
            upper=self.config.upper,
            epsilon=self.config.epsilon,
            noise_multiplier=self.noise_multiplier,
            rng=self.rng,
        )
        out = list(values)
        as_int = all(isinstance(values[i], int) for i in present)
        for i, value in zip(present, noisy.tolist(), strict=True):
            out[i] = round(value) if as_int else value
        return out

    def mechanisms(self) -> list[LaplaceMechanism | GaussianMechanism]:
        if self.noise_multiplier is not None:
            return [GaussianMechanism(noise_multiplier=self.noise_multiplier)]
        return [LaplaceMechanism(epsilon=self.config.epsilon)]
