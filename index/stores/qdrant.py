"""A Qdrant server or cluster through qdrant-client (gRPC preferred), or its local mode.

Local mode (``path``) speaks the same client API without a server: the tests run this backend
against it. Server-only settings (HNSW, quantization, payload indexes, parallel upload) are
sent either way; local mode accepts and ignores what it cannot use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from index.config import QdrantStoreConfig
from index.errors import VectorStoreError
from index.points import CHUNK_HASH_PATH, PAYLOAD_HASH_PATH
from index.stores.base import Hit, Match, StoredPoint, batched
from pipelines.errors import ConfigError, StewardError, first_line

if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

_SCROLL_PAGE = 2048


class QdrantStore:
    """A ``VectorStore`` over one collection of a Qdrant server (or local-mode folder)."""

    def __init__(self, config: QdrantStoreConfig, collection: str):
        from qdrant_client import QdrantClient

        self._config = config
        self._collection = collection
        self._where = config.url or str(config.path)
        with self._errors("connect"):
            if config.path is not None:
                self._client = QdrantClient(path=str(config.path))
            else:
                self._client = QdrantClient(
                    url=config.url,
                    api_key=self._api_key(),
                    prefer_grpc=config.prefer_grpc,
                    grpc_port=config.grpc_port,
                    timeout=int(config.timeout_s),
                )

    def _api_key(self) -> str | None:
        env = self._config.api_key_env
        if env is None:
            return None
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"kb.store.api_key_env: environment variable {env} is not set")
        return value

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Report a backend failure as one line naming the store (never the API key)."""
        try:
            yield
        except StewardError:
            raise
        except Exception as exc:  # qdrant-client raises transport-specific families
            text = first_line(exc)
            locked = "already accessed by another instance" in text
            raise VectorStoreError(
                f"qdrant {self._where} collection {self._collection}: {action} failed: {text}",
                transient=locked or self._config.url is not None,
                stage="kb",
            ) from None

    @property
    def client(self) -> QdrantClient:
        return self._client

    def exists(self) -> bool:
        with self._errors("check collection"):
            return bool(self._client.collection_exists(self._collection))

    def create_if_missing(self, dimension: int, keyword_fields: Sequence[str]) -> None:
        from qdrant_client import models

        if self.exists():
            with self._errors("read collection"):
                params = self._client.get_collection(self._collection).config.params.vectors
            size = params.size if isinstance(params, models.VectorParams) else None
            if size is not None and size != dimension:
                raise ConfigError(
                    f"kb: collection {self._collection} holds {size}-dimensional vectors but the"
                    f" model makes {dimension}; use a new collection for a different model"
                )
        else:
            quantization = (
                models.ScalarQuantization(
                    scalar=models.ScalarQuantizationConfig(
                        type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                    )
                )
                if self._config.quantization == "int8"
                else None
            )
            with self._errors("create collection"):
                self._client.create_collection(
                    self._collection,
                    vectors_config=models.VectorParams(
                        size=dimension,
                        distance=models.Distance.COSINE,
                        on_disk=self._config.on_disk,
                    ),
                    hnsw_config=models.HnswConfigDiff(
                        m=self._config.hnsw.m, ef_construct=self._config.hnsw.ef_construct
                    ),
                    quantization_config=quantization,
                )
        if self._config.path is not None:
            return  # local mode scans payloads and warns that indexes have no effect
        with self._errors("create payload index"):
            for field in keyword_fields:
                self._client.create_payload_index(
                    self._collection, field, models.PayloadSchemaType.KEYWORD, wait=True
                )

    @staticmethod
    def _filter(conditions: Sequence[Match]) -> models.Filter | None:
        from qdrant_client import models

        if not conditions:
            return None
        return models.Filter(
            must=[
                models.FieldCondition(key=c.key, match=models.MatchAny(any=list(c.values)))
                for c in conditions
            ]
        )

    def stored(self, conditions: Sequence[Match]) -> Iterator[StoredPoint]:
        from qdrant_client import models

        if not self.exists():
            return
        offset = None
        selector = models.PayloadSelectorInclude(include=[CHUNK_HASH_PATH, PAYLOAD_HASH_PATH])
        while True:
            with self._errors("scroll"):
                records, offset = self._client.scroll(
                    self._collection,
                    scroll_filter=self._filter(conditions),
                    limit=_SCROLL_PAGE,
                    offset=offset,
                    with_payload=selector,
                    with_vectors=False,
                )
            for record in records:
                yield StoredPoint.of(record.id, record.payload)
            if offset is None:
                return

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        from qdrant_client import models

        points = [
            models.PointStruct(id=i, vector=v, payload=p)
            for i, v, p in zip(ids, vectors.tolist(), payloads, strict=True)
        ]
        # Local mode has no server to upload to in parallel.
        parallel = 1 if self._config.path is not None else self._config.upload_parallel
        with self._errors("upload"):
            self._client.upload_points(
                self._collection,
                points,
                batch_size=self._config.write_batch_size,
                parallel=parallel,
                wait=True,
            )

    def overwrite_payloads(self, payloads: Mapping[str, dict[str, Any]]) -> None:
        from qdrant_client import models

        operations = [
            models.OverwritePayloadOperation(
                overwrite_payload=models.SetPayload(payload=payload, points=[point])
            )
            for point, payload in payloads.items()
        ]
        with self._errors("overwrite payload"):
            for batch in batched(operations, self._config.write_batch_size):
                self._client.batch_update_points(self._collection, list(batch), wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        with self._errors("delete"):
            for batch in batched(list(ids), self._config.write_batch_size):
                self._client.delete(
                    self._collection, models.PointIdsList(points=list(batch)), wait=True
                )

    def payload(self, point_id: str) -> dict[str, Any] | None:
        if not self.exists():
            return None
        with self._errors("retrieve"):
            records = self._client.retrieve(
                self._collection, ids=[point_id], with_payload=True, with_vectors=False
            )
        return dict(records[0].payload or {}) if records else None

    def search(self, vector: np.ndarray, limit: int, conditions: Sequence[Match]) -> list[Hit]:
        if not self.exists():
            raise VectorStoreError(
                f"no collection {self._collection} at {self._where} (run `steward kb load` first)",
                stage="kb",
            )
        with self._errors("query"):
            result = self._client.query_points(
                self._collection,
                query=vector.astype(np.float32).tolist(),
                query_filter=self._filter(conditions),
                limit=limit,
                with_payload=True,
                with_vectors=False,
            )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in result.points]

    def count(self, conditions: Sequence[Match] = ()) -> int:
        if not self.exists():
            return 0
        with self._errors("count"):
            return int(
                self._client.count(
                    self._collection, count_filter=self._filter(conditions), exact=True
                ).count
            )

    def finish(self) -> None:
        """Nothing to do: every write waited for the server, which indexes in the background."""

    def close(self) -> None:
        self._client.close()
