"""What the loader and search need from a vector store, in engine-neutral types.

Filters are a conjunction of ``Match`` conditions (payload path in a set of values): the one
shape access control and user filters need, small enough that every backend translates it
exactly. A backend never decides what is visible; it only applies the conditions it is given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Match:
    """Payload ``key`` (a dotted path) holds one of ``values`` (or, for a list, contains one)."""

    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class StoredPoint:
    """The part of a stored point the loader compares against: its id and hashes."""

    id: str
    chunk_hash: str | None
    payload_hash: str | None

    @classmethod
    def of(cls, point_id: object, payload: Mapping[str, Any] | None) -> StoredPoint:
        """From a scrolled record of either backend (its id and its payload's metadata)."""
        metadata = (payload or {}).get("metadata", {})
        return cls(str(point_id), metadata.get("chunk_hash"), metadata.get("payload_hash"))


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any]


class VectorStore(Protocol):
    """One collection of points with payloads (a Qdrant collection or an Edge shard)."""

    def exists(self) -> bool: ...

    def create_if_missing(self, dimension: int, keyword_fields: Sequence[str]) -> None:
        """Create the collection with payload indexes on ``keyword_fields``; refuse an existing
        one whose vectors have another dimension (a different model needs a new collection)."""
        ...

    def stored(self, conditions: Sequence[Match]) -> Iterator[StoredPoint]:
        """Every point matching ``conditions``, without vectors."""
        ...

    def upsert(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None: ...

    def overwrite_payloads(self, payloads: Mapping[str, dict[str, Any]]) -> None:
        """Replace the payloads of existing points, keeping their vectors."""
        ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, limit: int, conditions: Sequence[Match]) -> list[Hit]: ...

    def payload(self, point_id: str) -> dict[str, Any] | None:
        """One point's payload by id (None: no such point); for audit, not for queries."""
        ...

    def count(self, conditions: Sequence[Match] = ()) -> int: ...

    def finish(self) -> None:
        """Make the writes so far durable and build indexes (end of a load)."""
        ...

    def close(self) -> None: ...


def batched(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
