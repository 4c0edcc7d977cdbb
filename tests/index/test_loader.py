"""Loading curated tables into both stores: incremental, deletions, payload-only changes."""

# ruff: noqa: RUF001

from __future__ import annotations

from typing import Any

import pytest

from index.loader import KnowledgeBaseLoader
from index.points import point_id
from index.search import search
from index.stores import Match, VectorStore
from pipelines.errors import LakeError


def points_of(store: VectorStore, dataset: str, key: str) -> dict[str, str | None]:
    conditions = [
        Match("metadata.dataset", (dataset,)),
        Match("metadata._source_key", (key,)),
    ]
    return {p.id: p.chunk_hash for p in store.stored(conditions)}


def test_first_load_writes_every_chunk_with_lineage(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    reports = {r.dataset: r for r in loader.load_lake(curated_lake.lake)}
    medical = reports["medical_orders"]
    assert medical.rows == 6 and medical.table == "curated.medical_orders"
    assert medical.snapshot_id is not None
    # Row 6 has no notes: 6 prescriptions + 5 notes, each one chunk at these lengths.
    assert medical.chunks == medical.upserted == 11
    assert medical.deleted == medical.unchanged == 0
    support = reports["support_tickets"]
    assert support.rows == 3 and support.chunks >= 3
    assert store.count() == medical.chunks + support.chunks
    assert len(embedder.texts) == medical.embedded + support.embedded

    # Deterministic ids: UUIDv5 of dataset, source key, field and chunk index.
    ids = points_of(store, "medical_orders", "3")
    assert set(ids) == {
        point_id("medical_orders", "3", "prescription", 0),
        point_id("medical_orders", "3", "notes", 0),
    }
    hits = search(
        loader.config,
        embedder,
        store,
        "化疗第二周期，注意血常规变化！Nausea reported.",
        principal="auditor",
        k=3,
        filters={"dataset": "medical_orders"},
    )
    top = hits[0]
    assert top.metadata["_source_key"] == "3" and top.metadata["field"] == "notes"
    assert top.text == "化疗第二周期，注意血常规变化！Nausea reported."
    assert top.metadata["_run_id"] == "run-1" and top.metadata["_rules_version"] == "rules-v1"
    assert top.metadata["access"] == {"department": "oncology", "tenant": "acme"}
    assert top.score == pytest.approx(1.0, abs=1e-3)  # the query is that chunk's text


def test_reload_without_changes_embeds_and_writes_nothing(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    before = store.count()
    embedder.reset()
    reports = loader.load_lake(curated_lake.lake)
    assert embedder.texts == []
    for report in reports:
        assert report.embedded == report.upserted == report.payload_updated == 0
        assert report.deleted == 0 and report.unchanged == report.chunks
    assert store.count() == before


def test_changed_row_replaces_its_points_and_deleted_row_removes_them(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    before = store.count()
    old_points = points_of(store, "medical_orders", "2")
    rows = [r for r in curated_lake.medical_rows if r[0] != "5"]  # row 5 deleted upstream
    long_note = "心率 72 次/分，律齐。" * 30  # row 2's notes now span several chunks
    rows = [(k, d, t, p, long_note if k == "2" else n) for k, d, t, p, n in rows]
    curated_lake.write_medical(rows)
    embedder.reset()

    report = loader.load_lake(curated_lake.lake, ["medical_orders"])[0]
    new_points = points_of(store, "medical_orders", "2")
    notes_chunks = [i for i in new_points if i not in old_points or old_points[i] != new_points[i]]
    assert len(notes_chunks) == len(new_points) - 1  # all but the unchanged prescription
    assert len(new_points) > 2
    # Only the new note's chunks were embedded; identical chunk texts once.
    assert report.upserted == len(notes_chunks)
    assert 0 < len(embedder.texts) <= report.upserted
    assert all("心率" in text for text in embedder.texts)
    assert points_of(store, "medical_orders", "5") == {}
    assert report.deleted == 2  # row 5's prescription and notes
    assert store.count() == before - 2 - len(old_points) + len(new_points)

    # Shrinking back to one chunk deletes the extra chunk points.
    curated_lake.write_medical(
        [*rows[:1], ("2", "cardiology", "acme", rows[1][3], "短。"), *rows[2:]]
    )
    report = loader.load_lake(curated_lake.lake, ["medical_orders"])[0]
    assert len(points_of(store, "medical_orders", "2")) == 2
    assert report.deleted == len(new_points) - 2


def test_access_tag_change_rewrites_the_payload_without_embedding(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    rows = [
        (k, "oncology" if k == "1" else d, t, p, n) for k, d, t, p, n in curated_lake.medical_rows
    ]
    curated_lake.write_medical(rows)
    embedder.reset()
    report = loader.load_lake(curated_lake.lake, ["medical_orders"])[0]
    assert embedder.texts == []
    assert report.payload_updated == 2 and report.upserted == 0
    conditions = [Match("metadata.access.department", ("cardiology",))]
    assert {p.id for p in store.stored(conditions)} == set(points_of(store, "medical_orders", "2"))
    hits = search(loader.config, embedder, store, rows[0][4], principal="cardiologist", k=10)
    assert hits
    assert all(h.metadata["_source_key"] != "1" for h in hits)


def test_stream_micro_batches_touch_only_their_keys(
    loader: KnowledgeBaseLoader, curated_lake: Any, embedder: Any, store: VectorStore
) -> None:
    loader.load_lake(curated_lake.lake)
    before = store.count()
    rows = curated_lake.medical_rows
    # A micro-batch with row 1 changed (notes emptied) and a new row 7; rows 2-6 are absent
    # from the batch but not deleted upstream.
    batch = curated_lake.medical_table(
        [
            ("1", "cardiology", "acme", rows[0][3], None),
            ("7", "cardiology", "acme", "硝酸甘油 0.5mg 舌下含服 prn", "Chest pain relieved."),
        ]
    )
    embedder.reset()
    report = loader.sync("medical_orders", [batch], complete=False)
    assert report.deleted == 1  # row 1's notes chunk
    assert report.upserted == 2  # row 7's two chunks
    assert report.payload_updated == 1  # row 1's prescription: same text, new _content_hash
    assert len(points_of(store, "medical_orders", "2")) == 2  # untouched
    assert store.count() == before - 1 + 2
    # Rows deleted upstream arrive as keys.
    assert loader.delete_rows("medical_orders", ["7", "6"]) == 3
    assert points_of(store, "medical_orders", "7") == {}


def test_repeated_source_key_is_refused(loader: KnowledgeBaseLoader, curated_lake: Any) -> None:
    rows = curated_lake.medical_rows
    curated_lake.write_medical([*rows, rows[0]])
    with pytest.raises(LakeError, match="source key '1' appears in more than one row"):
        loader.load_lake(curated_lake.lake, ["medical_orders"])
