"""The embedded default: a Qdrant Edge shard on disk, the Qdrant engine in-process.

One shard folder is one collection. A shard is held by one process at a time (its write-ahead
log is locked), so a search while a load runs fails with a transient ``VectorStoreError``
rather than waiting.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.config import EdgeStoreConfig
from index.errors import VectorStoreError
from index.points import CHUNK_HASH_PATH, PAYLOAD_HASH_PATH
from index.stores.base import Hit, Match, StoredPoint, batched
from pipelines.errors import ConfigError, first_line

if TYPE_CHECKING:
    import qdrant_edge

_SCROLL_PAGE = 2048
_CONFIG_FILE = "edge_config.json"  # written by EdgeShard.create; marks an existing shard


class EdgeStore:
    """A ``VectorStore`` over one ``qdrant_edge.EdgeShard``."""

    def __init__(self, config: EdgeStoreConfig):
        import qdrant_edge

        if config.path is None:
            raise ConfigError("kb.store.path: the Edge shard folder was not resolved")
        self._q = qdrant_edge
        self._config = config
        self._path: Path = config.path
        self._shard: qdrant_edge.EdgeShard | None = None
        if self.exists():
            self._shard = self._open(lambda: qdrant_edge.EdgeShard.load(str(self._path)))

    def _open(self, opener: Any) -> qdrant_edge.EdgeShard:
        try:
            return opener()
        except Exception as exc:  # the bindings raise a bare Exception with the engine's text
            message = first_line(exc)
            locked = "WouldBlock" in message
            why = "held by another process (a load or search running?)" if locked else message
            raise VectorStoreError(
                f"Edge shard {self._path}: {why}", transient=locked, stage="kb"
            ) from None

    @property
    def shard(self) -> qdrant_edge.EdgeShard:
        if self._shard is None:
            raise VectorStoreError(
                f"no knowledge base at {self._path} (run `steward kb load` first)", stage="kb"
            )
        return self._shard

    def exists(self) -> bool:
        return (self._path / _CONFIG_FILE).exists()

    def _edge_config(self, dimension: int) -> qdrant_edge.EdgeConfig:
        q = self._q
        quantization = (
            q.ScalarQuantizationConfig(type=q.ScalarType.Int8, quantile=0.99, always_ram=True)
            if self._config.quantization == "int8"
            else None
        )
        return q.EdgeConfig(
            vectors=q.EdgeVectorParams(size=dimension, distance=q.Distance.Cosine),
            hnsw_config=q.HnswIndexConfig(
                m=self._config.hnsw.m,
                ef_construct=self._config.hnsw.ef_construct,
                full_scan_threshold=10_000,
            ),
            quantization_config=quantization,
        )

    def create_if_missing(self, dimension: int, keyword_fields: Sequence[str]) -> None:
        q = self._q
        if self._shard is None:
            self._path.mkdir(parents=True, exist_ok=True)
            self._shard = self._open(
                lambda: q.EdgeShard.create(str(self._path), self._edge_config(dimension))
            )
        stored = self._shard.info()
        existing = self._dimension()
        if existing is not None and existing != dimension:
            raise ConfigError(
                f"kb: the shard {self._path} holds {existing}-dimensional vectors but the model"
                f" makes {dimension}; use a new collection (or path) for a different model"
            )
        for field in keyword_fields:
            if field not in stored.payload_schema:
                self._shard.update(
                    q.UpdateOperation.create_field_index(field, q.PayloadSchemaType.Keyword)
                )

    def _dimension(self) -> int | None:
        import json

        try:
            config = json.loads((self._path / _CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        vectors = config.get("vectors", {})
        params = vectors.get("", next(iter(vectors.values()), {})) if vectors else {}
        size = params.get("size")
        return int(size) if size is not None else None

    def _filter(self, conditions: Sequence[Match]) -> qdrant_edge.Filter | None:
        q = self._q
        if not conditions:
            return None
        return q.Filter(
            must=[q.FieldCondition(key=c.key, match=q.MatchAny(list(c.values))) for c in conditions]
        )

    def stored(self, conditions: Sequence[Match]) -> Iterator[StoredPoint]:
        q = self._q
        if self._shard is None:
            return
        offset = None
        selector = q.PayloadSelector.Include([CHUNK_HASH_PATH, PAYLOAD_HASH_PATH])
        while True:
            records, offset = self._shard.scroll(
                q.ScrollRequest(
                    offset=offset,
                    limit=_SCROLL_PAGE,
                    filter=self._filter(conditions),
                    with_payload=selector,
                    with_vector=False,
                )
            )
            for record in records:
                yield StoredPoint.of(record.id, record.payload)
            if offset is None:
                return

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        q = self._q
        rows = list(zip(ids, vectors.tolist(), payloads, strict=True))
        for batch in batched(rows, self._config.write_batch_size):
            points = [q.Point(id=uuid.UUID(i), vector=v, payload=p) for i, v, p in batch]
            self.shard.update(q.UpdateOperation.upsert_points(points))

    def overwrite_payloads(self, payloads: Mapping[str, dict[str, Any]]) -> None:
        q = self._q
        for point, payload in payloads.items():
            self.shard.update(q.UpdateOperation.overwrite_payload([uuid.UUID(point)], payload))

    def delete(self, ids: Sequence[str]) -> None:
        q = self._q
        for batch in batched(list(ids), self._config.write_batch_size):
            self.shard.update(q.UpdateOperation.delete_points([uuid.UUID(i) for i in batch]))

    def search(self, vector: np.ndarray, limit: int, conditions: Sequence[Match]) -> list[Hit]:
        q = self._q
        points = self.shard.query(
            q.QueryRequest(
                limit=limit,
                query=q.Query.Nearest(vector.astype(np.float32).tolist()),
                filter=self._filter(conditions),
                with_payload=True,
                with_vector=False,
            )
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def payload(self, point_id: str) -> dict[str, Any] | None:
        if self._shard is None:
            return None
        records = self._shard.retrieve([uuid.UUID(point_id)], True, False)
        return dict(records[0].payload or {}) if records else None

    def count(self, conditions: Sequence[Match] = ()) -> int:
        if self._shard is None:
            return 0
        return int(
            self._shard.count(self._q.CountRequest(exact=True, filter=self._filter(conditions)))
        )

    def finish(self) -> None:
        # optimize() builds the HNSW graph and merges segments in-process; without it the
        # appendable segment is searched by brute force.
        self.shard.flush()
        self.shard.optimize()
        self.shard.flush()

    def close(self) -> None:
        if self._shard is not None:
            self._shard.close()
            self._shard = None
