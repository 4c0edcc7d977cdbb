"""What one chunk becomes in the vector store: a deterministic id, hashes and a payload.

The payload follows LangChain's Qdrant integration defaults (``page_content`` and
``metadata``), so LangChain's ``QdrantVectorStore`` and LlamaIndex readers configured for that
layout read the collection without a custom mapping. ``metadata`` carries the lineage columns
of the source row under their lake names, the dataset, field and chunk position, and the
access tags under ``metadata.access.<tag>``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from index.chunk import TextChunk

# Fixed forever: changing it would give every chunk a new id and duplicate the whole KB.
POINT_NAMESPACE = uuid.UUID("dbbaa06f-19f2-5731-8e1f-9a5e48ee744c")

CONTENT_KEY = "page_content"
METADATA_KEY = "metadata"

# Payload paths the loader reads back and that stores index for filtering.
DATASET_PATH = f"{METADATA_KEY}.dataset"
SOURCE_KEY_PATH = f"{METADATA_KEY}._source_key"
CHUNK_HASH_PATH = f"{METADATA_KEY}.chunk_hash"
PAYLOAD_HASH_PATH = f"{METADATA_KEY}.payload_hash"


def access_path(tag: str) -> str:
    return f"{METADATA_KEY}.access.{tag}"


def point_id(dataset: str, source_key: str, field: str, chunk_index: int) -> str:
    """UUIDv5 of dataset, source key, field and chunk index.

    The dataset is part of the name because ``_source_key`` is only unique within its entity
    (order 7 and invoice 7 both have key "7"). The parts are JSON-encoded so no choice of
    key text can make two different tuples collide.
    """
    name = json.dumps([dataset, source_key, field, chunk_index], ensure_ascii=False)
    return str(uuid.uuid5(POINT_NAMESPACE, name))


def chunk_hash(model_id: str, text: str) -> str:
    """Decides re-embedding: the same text under the same model has the same vector."""
    return hashlib.sha256(f"{model_id}\x00{text}".encode()).hexdigest()[:32]


def json_value(value: Any) -> Any:
    """A lake value as JSON (timestamps as ISO 8601, decimals as strings)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def tag_value(value: Any) -> str | list[str]:
    """Access tags are strings (a list for a multi-valued column), so that a principal's
    allowed values, which are strings in YAML, match an integer tenant id too."""
    if isinstance(value, list | tuple):
        return [str(json_value(v)) for v in value if v is not None]
    return str(json_value(value))


def payload_hash(payload: Mapping[str, Any]) -> str:
    """Decides re-writing a payload whose vector is unchanged (new lineage or access tags)."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ChunkPoint:
    """A chunk ready for the store, minus its vector."""

    id: str
    source_key: str
    tokens: int
    chunk_hash: str
    payload_hash: str
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload[CONTENT_KEY])


def chunk_point(
    *,
    dataset: str,
    field: str,
    chunk: TextChunk,
    chunk_count: int,
    lineage: Mapping[str, Any],
    access: Mapping[str, Any],
    model_id: str,
) -> ChunkPoint:
    """Build the point for ``chunk`` of ``field`` in a row with ``lineage`` and ``access``."""
    source_key = str(lineage["_source_key"])
    text_hash = chunk_hash(model_id, chunk.text)
    metadata: dict[str, Any] = {
        **{name: json_value(value) for name, value in lineage.items()},
        "dataset": dataset,
        "field": field,
        "chunk_index": chunk.index,
        "chunk_count": chunk_count,
        "char_start": chunk.start,
        "char_end": chunk.end,
        "access": {tag: tag_value(value) for tag, value in access.items() if value is not None},
        "embedding_model": model_id,
        "chunk_hash": text_hash,
    }
    payload = {CONTENT_KEY: chunk.text, METADATA_KEY: metadata}
    digest = payload_hash(payload)
    metadata["payload_hash"] = digest
    return ChunkPoint(
        id=point_id(dataset, source_key, field, chunk.index),
        source_key=source_key,
        tokens=chunk.tokens,
        chunk_hash=text_hash,
        payload_hash=digest,
        payload=payload,
    )
