"""Vector-store backends, chosen by ``kb.store.kind``.

A registry rather than an if-chain: a backend is a constructor taking the store config and the
collection name; each imports its client library when called, so ``steward --help`` and code
that only chunks never import qdrant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from index.config import EdgeStoreConfig, KnowledgeBaseConfig, QdrantStoreConfig
from index.stores.base import Hit, Match, StoredPoint, VectorStore


def _edge(config: Any, collection: str) -> VectorStore:
    from index.stores.edge import EdgeStore

    assert isinstance(config, EdgeStoreConfig)
    return EdgeStore(config)


def _qdrant(config: Any, collection: str) -> VectorStore:
    from index.stores.qdrant import QdrantStore

    assert isinstance(config, QdrantStoreConfig)
    return QdrantStore(config, collection)


STORES: dict[str, Callable[[Any, str], VectorStore]] = {"edge": _edge, "qdrant": _qdrant}


def open_store(config: KnowledgeBaseConfig) -> VectorStore:
    """The store ``config.store`` names (its paths already anchored)."""
    return STORES[config.store.kind](config.store, config.collection)


__all__ = ["STORES", "Hit", "Match", "StoredPoint", "VectorStore", "open_store"]
