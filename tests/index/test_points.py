"""Point ids, hashes and the LangChain-compatible payload layout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from index.chunk import TextChunk
from index.points import POINT_NAMESPACE, chunk_point, point_id

LINEAGE = {
    "_source": "erp",
    "_entity": "medical_orders",
    "_source_key": "42",
    "_ingested_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    "_run_id": "run-7",
    "_content_hash": "abc",
    "_rules_version": "r1",
}


def make(text: str = "阿司匹林 100mg", **changes: object) -> object:
    kwargs: dict = {
        "dataset": "medical_orders",
        "field": "notes",
        "chunk": TextChunk(0, text, 0, len(text), 5),
        "chunk_count": 1,
        "lineage": LINEAGE,
        "access": {"department": "cardiology", "tenant": 7, "ward": None},
        "model_id": "m",
    }
    kwargs.update(changes)
    return chunk_point(**kwargs)


def test_point_id_is_uuid5_of_dataset_source_key_field_and_chunk_index() -> None:
    expected = uuid.uuid5(POINT_NAMESPACE, '["medical_orders", "42", "notes", 3]')
    assert point_id("medical_orders", "42", "notes", 3) == str(expected)
    assert uuid.UUID(point_id("a", "1", "f", 0)).version == 5
    # Stable across calls and distinct along every part.
    ids = {
        point_id("medical_orders", "42", "notes", 3),
        point_id("invoices", "42", "notes", 3),
        point_id("medical_orders", "43", "notes", 3),
        point_id("medical_orders", "42", "prescription", 3),
        point_id("medical_orders", "42", "notes", 4),
    }
    assert len(ids) == 5
    # No separator games: the parts are JSON-encoded.
    assert point_id("a/b", "c", "f", 0) != point_id("a", "b/c", "f", 0)


def test_payload_layout_is_page_content_and_metadata() -> None:
    point = make()
    assert set(point.payload) == {"page_content", "metadata"}
    metadata = point.payload["metadata"]
    assert point.payload["page_content"] == "阿司匹林 100mg"
    assert metadata["_source_key"] == "42"
    assert metadata["_ingested_at"] == "2025-01-02T03:04:05+00:00"
    assert metadata["dataset"] == "medical_orders" and metadata["field"] == "notes"
    assert metadata["chunk_index"] == 0 and metadata["chunk_count"] == 1
    # Tags are strings (principals list strings); a null tag is left out.
    assert metadata["access"] == {"department": "cardiology", "tenant": "7"}
    assert metadata["chunk_hash"] == point.chunk_hash
    assert metadata["payload_hash"] == point.payload_hash


def test_chunk_hash_follows_text_and_model_payload_hash_follows_everything() -> None:
    base = make()
    same = make()
    assert (base.chunk_hash, base.payload_hash) == (same.chunk_hash, same.payload_hash)
    other_text = make("阿司匹林 200mg")
    assert other_text.chunk_hash != base.chunk_hash
    other_model = make(model_id="other")
    assert other_model.chunk_hash != base.chunk_hash
    moved = make(access={"department": "oncology", "tenant": 7})
    assert moved.chunk_hash == base.chunk_hash and moved.payload_hash != base.payload_hash
    rerun = make(lineage={**LINEAGE, "_run_id": "run-8", "_content_hash": Decimal("1.5")})
    assert rerun.chunk_hash == base.chunk_hash and rerun.payload_hash != base.payload_hash
