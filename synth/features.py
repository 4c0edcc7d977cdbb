"""Feature vectors of records, for the filters and exemplar choice.

Text tasks embed their text field with the sentence encoder. Structured (dp-tabular) tasks
one-hot the binned columns other than the label; there, nearness means "same cells", so the
memorisation and duplicate guards use exact record equality instead of a cosine threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from synth.embed import TextEncoder, unit_rows
from synth.tabular import TabularCodec


class Featurizer(Protocol):
    def vectors(self, records: Sequence[dict[str, Any]]) -> np.ndarray: ...

    def text(self, record: dict[str, Any]) -> str | None:
        """The text the n-gram guard and diversity report look at; None for structured."""
        ...


class TextFeaturizer:
    def __init__(self, encoder: TextEncoder, field: str):
        self.encoder = encoder
        self.field = field

    def vectors(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        return self.encoder.embed([self.text(r) for r in records])

    def text(self, record: dict[str, Any]) -> str:
        return str(record.get(self.field) or "")


class TabularFeaturizer:
    def __init__(self, codec: TabularCodec, label_field: str):
        self.codec = codec
        self.label_field = label_field

    def vectors(self, records: Sequence[dict[str, Any]]) -> np.ndarray:
        # Records reaching the filters were produced by the codec (or validated by it).
        codes = np.array([self.codec.encode(r) or [] for r in records], dtype=np.int64)
        onehot = self.codec.one_hot(codes.reshape(len(records), len(self.codec.columns)))
        keep = np.concatenate(
            [
                np.full(size, column.name != self.label_field)
                for column, size in zip(self.codec.columns, self.codec.sizes, strict=True)
            ]
        )
        return unit_rows(onehot[:, keep])

    def text(self, record: dict[str, Any]) -> None:
        return None
