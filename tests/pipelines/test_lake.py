"""The lake seen from Python (pyiceberg): listing, snapshots and atomic releases. No JVM."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipelines.config import LakeConfig
from pipelines.errors import LakeError
from pipelines.lake import Lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(LakeConfig(root=tmp_path / "lake"))
    lake.prepare()
    lake.catalog.create_namespace("curated")
    return lake


def rows(n: int, start: int = 0) -> pa.Table:
    return pa.table(
        {
            "_source_key": pa.array([str(i) for i in range(start, start + n)], pa.string()),
            "text": pa.array([f"row {i} 阿莫西林" for i in range(start, start + n)], pa.string()),
        }
    )


def test_tables_and_snapshots(lake: Lake) -> None:
    table = lake.catalog.create_table("curated.notes", schema=rows(0).schema)
    table.append(rows(3), snapshot_properties={"steward.run-id": "run-1"})
    assert lake.tables() == ["curated.notes"]
    [snapshot] = lake.snapshots("curated.notes")
    assert snapshot["operation"] == "append"
    assert snapshot["summary"]["steward.run-id"] == "run-1"
    assert lake.read("curated.notes").num_rows == 3


def test_release_is_plain_parquet_and_idempotent(lake: Lake) -> None:
    table = lake.catalog.create_table("curated.notes", schema=rows(0).schema)
    table.append(rows(5))
    first = lake.release("notes")
    assert first.created and first.version == "v1" and first.rows == 5
    assert first.path == lake.config.releases / "notes" / "v1"
    # Any Parquet reader reads it as is.
    assert pq.read_table(first.path / "data").num_rows == 5
    assert ds.dataset(first.path / "data", format="parquet").count_rows() == 5
    # Releasing the same snapshot again changes nothing.
    again = lake.release("notes")
    assert not again.created and again.version == "v1"
    # A new snapshot gets the next version; the old release stays as it was.
    table.append(rows(2, start=5))
    second = lake.release("notes")
    assert second.version == "v2" and second.rows == 7
    assert pq.read_table(first.path / "data").num_rows == 5
    assert [r["version"] for r in lake.releases("notes")] == ["v1", "v2"]


def test_release_of_an_older_snapshot(lake: Lake) -> None:
    table = lake.catalog.create_table("curated.notes", schema=rows(0).schema)
    table.append(rows(2))
    old = table.current_snapshot().snapshot_id
    table.append(rows(2, start=2))
    info = lake.release("notes", snapshot_id=old, version="2026-11-first")
    assert info.rows == 2 and info.path.name == "2026-11-first"


def test_failed_release_leaves_nothing(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    table = lake.catalog.create_table("curated.notes", schema=rows(0).schema)
    table.append(rows(4))

    def crash(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.release("notes")
    releases = lake.config.releases / "notes"
    assert list(releases.iterdir()) == []  # no half-written version, no staging folder
    monkeypatch.undo()
    assert lake.release("notes").version == "v1"


def test_existing_version_is_never_overwritten(lake: Lake) -> None:
    table = lake.catalog.create_table("curated.notes", schema=rows(0).schema)
    table.append(rows(1))
    lake.release("notes", version="gold")
    table.append(rows(1, start=1))
    with pytest.raises(LakeError, match="releases are immutable"):
        lake.release("notes", version="gold")


def test_missing_lake_table_and_corrupt_catalog(tmp_path: Path, lake: Lake) -> None:
    with pytest.raises(LakeError, match=r"no table curated\.absent"):
        lake.read("curated.absent")
    with pytest.raises(LakeError, match=r"catalog .* does not exist"):
        Lake(LakeConfig(root=tmp_path / "nowhere")).tables()
    corrupt_root = tmp_path / "corrupt"
    corrupt_root.mkdir()
    (corrupt_root / "catalog.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(LakeError, match="catalog"):
        Lake(LakeConfig(root=corrupt_root)).tables()


def test_locked_catalog_is_a_lake_error(tmp_path: Path) -> None:
    import sqlite3

    # A catalog file in SQLite's default journal mode (not WAL), held by another writer.
    lake = Lake(LakeConfig(root=tmp_path / "locked"))
    lake.config.warehouse.mkdir(parents=True)
    assert lake.sqlite_path is not None
    sqlite3.connect(lake.sqlite_path).close()
    lake.catalog.create_namespace("curated")
    holder = sqlite3.connect(lake.sqlite_path, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LakeError, match=r"catalog .*locked"):
            Lake(lake.config).tables()
    finally:
        holder.rollback()
        holder.close()
