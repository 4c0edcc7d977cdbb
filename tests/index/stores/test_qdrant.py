"""The qdrant-client backend (local mode): a plain client sees our payload; failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.config import KnowledgeBaseConfig, QdrantStoreConfig
from index.errors import VectorStoreError
from index.loader import KnowledgeBaseLoader
from index.points import point_id
from index.stores import VectorStore
from index.stores.qdrant import QdrantStore
from pipelines.errors import ConfigError


@pytest.fixture
def backend() -> str:
    return "qdrant"


def test_a_plain_qdrant_client_reads_and_filters_our_payload(
    loader: KnowledgeBaseLoader,
    curated_lake: Any,
    kb: KnowledgeBaseConfig,
    store: VectorStore,
    embedder: Any,
) -> None:
    from qdrant_client import QdrantClient, models

    loader.load_lake(curated_lake.lake)
    store.close()  # local mode holds its folder
    assert isinstance(kb.store, QdrantStoreConfig) and kb.store.path is not None
    client = QdrantClient(path=str(kb.store.path))
    try:
        [record] = client.retrieve(kb.collection, [point_id("medical_orders", "4", "notes", 0)])
        assert record.payload is not None
        assert record.payload["page_content"] == "Patient tolerated chemotherapy well."
        assert record.payload["metadata"]["_source_key"] == "4"
        # What a RAG application would write: a nearest query with a tenant filter.
        hits = client.query_points(
            kb.collection,
            query=embedder.embed(["chemotherapy"])[0].tolist(),
            query_filter=models.Filter(
                must=[
                    models.FieldCondition(
                        key="metadata.access.tenant", match=models.MatchValue(value="globex")
                    )
                ]
            ),
            limit=20,
        ).points
        assert hits
        assert {h.payload["metadata"]["access"]["tenant"] for h in hits if h.payload} == {"globex"}
    finally:
        client.close()


def test_a_model_of_another_dimension_needs_a_new_collection(tmp_path: Path) -> None:
    config = QdrantStoreConfig(path=tmp_path / "q")
    store = QdrantStore(config, "kb")
    try:
        assert not store.exists() and store.count() == 0
        with pytest.raises(VectorStoreError, match="run `steward kb load` first"):
            store.search(np.zeros(8, dtype=np.float32), 3, [])
        store.create_if_missing(8, [])
        store.create_if_missing(8, [])  # idempotent
        with pytest.raises(ConfigError, match="holds 8-dimensional vectors but the model makes 16"):
            store.create_if_missing(16, [])
    finally:
        store.close()


def test_a_missing_api_key_variable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_TEST_QDRANT_KEY", raising=False)
    config = QdrantStoreConfig(url="http://127.0.0.1:1", api_key_env="STEWARD_TEST_QDRANT_KEY")
    with pytest.raises(ConfigError, match="STEWARD_TEST_QDRANT_KEY is not set"):
        QdrantStore(config, "kb")
