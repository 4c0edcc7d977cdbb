"""Structured records as integer codes: a category's index, or a numeric value's bin.

Bins are equal-width within the configured public bounds (values outside are clipped), so
encoding reads nothing from the data beyond each record itself.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from synth.config import TabularColumn


class TabularCodec:
    def __init__(self, columns: Sequence[TabularColumn]):
        self.columns = list(columns)
        self.sizes = [c.bins if c.kind == "numeric" else len(c.values or ()) for c in columns]

    def encode(self, record: dict[str, Any]) -> list[int] | None:
        """Codes of ``record``, or None when a value is missing or not of its column's kind."""
        codes = []
        for column, size in zip(self.columns, self.sizes, strict=True):
            value = record.get(column.name)
            if column.kind == "categorical":
                values = column.values or []
                if str(value) not in values:
                    return None
                codes.append(values.index(str(value)))
                continue
            try:
                number = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return None
            if math.isnan(number):
                return None
            assert column.min is not None and column.max is not None
            share = (number - column.min) / (column.max - column.min)
            codes.append(min(size - 1, max(0, int(share * size))))
        return codes

    def decode(self, codes: Sequence[int], rng: random.Random) -> dict[str, Any]:
        """A record for ``codes``; a numeric value is drawn uniformly within its bin."""
        record: dict[str, Any] = {}
        for column, size, code in zip(self.columns, self.sizes, codes, strict=True):
            if column.kind == "categorical":
                record[column.name] = (column.values or [])[code]
                continue
            assert column.min is not None and column.max is not None
            width = (column.max - column.min) / size
            number = round(column.min + width * (code + rng.random()), column.decimals)
            record[column.name] = int(number) if column.decimals == 0 else number
        return record

    def one_hot(self, codes: np.ndarray) -> np.ndarray:
        """``(rows, sum(sizes))`` float32 one-hot of a code matrix."""
        parts = [np.eye(size, dtype=np.float32)[codes[:, j]] for j, size in enumerate(self.sizes)]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(codes), 0), np.float32)
