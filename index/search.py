"""Search the knowledge base as a principal: access control is applied on every query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from index.access import search_conditions
from index.config import KnowledgeBaseConfig
from index.embed import Embedder
from index.points import CONTENT_KEY, METADATA_KEY
from index.stores.base import Hit, Match, VectorStore
from pipelines.errors import ConfigError

_MAX_K = 1000


@dataclass(frozen=True)
class SearchResult:
    """One chunk: its score, text and metadata (lineage back to the source row)."""

    id: str
    score: float
    text: str
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def search(
    config: KnowledgeBaseConfig,
    embedder: Embedder,
    store: VectorStore,
    query: str,
    *,
    principal: str,
    k: int = 5,
    filters: Mapping[str, str] | None = None,
) -> list[SearchResult]:
    """The ``k`` chunks nearest to ``query`` among those ``principal`` may see.

    The principal's access conditions are resolved before anything else (an unknown principal
    is refused before the model is even used) and travel with the query into the store, so
    results are filtered by the engine, not after the fact.
    """
    conditions = _conditions(config, principal, k, filters)
    return _results(store.search(embedder.embed([query])[0], k, conditions))


def search_vector(
    config: KnowledgeBaseConfig,
    store: VectorStore,
    vector: np.ndarray,
    *,
    principal: str,
    k: int = 5,
    filters: Mapping[str, str] | None = None,
) -> list[SearchResult]:
    """``search`` with the query already embedded (many principals or filters, one query)."""
    return _results(store.search(vector, k, _conditions(config, principal, k, filters)))


def _conditions(
    config: KnowledgeBaseConfig, principal: str, k: int, filters: Mapping[str, str] | None
) -> list[Match]:
    if not 1 <= k <= _MAX_K:
        raise ConfigError(f"--k must be between 1 and {_MAX_K}, got {k}")
    return search_conditions(config.access, principal, filters or {})


def _results(hits: list[Hit]) -> list[SearchResult]:
    return [
        SearchResult(
            id=hit.id,
            score=hit.score,
            text=str(hit.payload.get(CONTENT_KEY, "")),
            metadata=dict(hit.payload.get(METADATA_KEY, {})),
        )
        for hit in hits
    ]
