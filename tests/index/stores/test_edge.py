"""The Edge backend: a plain qdrant_edge reader sees our payload; shard-level failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.config import EdgeStoreConfig, KnowledgeBaseConfig
from index.errors import VectorStoreError
from index.loader import KnowledgeBaseLoader
from index.points import point_id
from index.stores import VectorStore, open_store
from index.stores.edge import EdgeStore
from pipelines.errors import ConfigError, ExitCode


@pytest.fixture
def backend() -> str:
    return "edge"


def test_a_plain_edge_reader_sees_the_langchain_payload(
    loader: KnowledgeBaseLoader, curated_lake: Any, kb: KnowledgeBaseConfig, store: VectorStore
) -> None:
    import qdrant_edge as q

    loader.load_lake(curated_lake.lake)
    store.close()  # one process holds a shard at a time
    assert isinstance(kb.store, EdgeStoreConfig) and kb.store.path is not None
    shard = q.EdgeShard.load(str(kb.store.path))
    try:
        [record] = shard.retrieve(
            [point_id("medical_orders", "4", "notes", 0)], with_payload=True, with_vector=True
        )
        assert record.payload is not None
        assert record.payload["page_content"] == "Patient tolerated chemotherapy well."
        metadata = record.payload["metadata"]
        assert metadata["_source_key"] == "4" and metadata["_entity"] == "medical_orders"
        assert metadata["access"] == {"department": "oncology", "tenant": "globex"}
        assert np.linalg.norm(np.asarray(record.vector)) == pytest.approx(1.0, abs=1e-4)
        indexed = set(shard.info().payload_schema)
        assert {"metadata.dataset", "metadata._source_key", "metadata.access.tenant"} <= indexed
    finally:
        shard.close()


def test_a_shard_held_by_another_process_is_a_transient_store_error(
    loader: KnowledgeBaseLoader, curated_lake: Any, kb: KnowledgeBaseConfig
) -> None:
    loader.load_lake(curated_lake.lake)
    with pytest.raises(VectorStoreError, match="held by another process") as caught:
        open_store(kb)
    assert caught.value.transient and caught.value.exit_code == ExitCode.LAKE


def test_searching_a_missing_shard_says_to_load_first(tmp_path: Path) -> None:
    store = EdgeStore(EdgeStoreConfig(path=tmp_path / "none"))
    assert not store.exists() and store.count() == 0
    with pytest.raises(VectorStoreError, match="run `steward kb load` first"):
        store.search(np.zeros(4, dtype=np.float32), 3, [])


def test_a_model_of_another_dimension_needs_a_new_shard(tmp_path: Path) -> None:
    config = EdgeStoreConfig(path=tmp_path / "shard")
    store = EdgeStore(config)
    store.create_if_missing(8, ["metadata.dataset"])
    store.create_if_missing(8, ["metadata.dataset"])  # idempotent
    store.close()
    store = EdgeStore(config)
    try:
        with pytest.raises(
            ConfigError, match="holds 8-dimensional vectors but the model makes 384"
        ):
            store.create_if_missing(384, [])
    finally:
        store.close()
