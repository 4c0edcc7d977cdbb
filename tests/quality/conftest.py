"""Shared data for the quality, card and lineage tests: demo-shaped rows and a small lake."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from pipelines.config import LakeConfig
from pipelines.contracts import EntityContract, load_contracts
from pipelines.lake import Lake

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def contracts() -> dict[str, EntityContract]:
    return load_contracts()


def orders(n: int = 6, *, run_id: str = "20250301T080000Z-aaaa0001") -> pa.Table:
    """Valid curated-shaped orders (contract columns plus lineage columns)."""
    keys = list(range(1, n + 1))
    return pa.table(
        {
            "order_id": pa.array(keys, pa.int32()),
            "customer_id": pa.array([100 + k for k in keys], pa.int32()),
            "order_date": pa.array([date(2025, 2, 1) + timedelta(days=k) for k in keys]),
            "amount": pa.array([Decimal(f"{k * 10}.50") for k in keys], pa.decimal128(12, 2)),
            "currency": pa.array(["CNY", "USD", "EUR"] * (n // 3) + ["CNY"] * (n % 3)),
            "status": pa.array(["paid", "shipped"] * (n // 2) + ["paid"] * (n % 2)),
            "note": pa.array(["请尽快发货"] + [None] * (n - 1), pa.string()),
            "updated_at": pa.array(
                [T0 - timedelta(hours=k) for k in keys], pa.timestamp("us", tz="UTC")
            ),
            "_source": pa.array(["erp"] * n),
            "_entity": pa.array(["orders"] * n),
            "_source_key": pa.array([str(k) for k in keys]),
            "_ingested_at": pa.array(
                [T0 + timedelta(minutes=k) for k in keys], pa.timestamp("us", tz="UTC")
            ),
            "_run_id": pa.array([run_id] * n),
            "_content_hash": pa.array([f"h{k}" for k in keys]),
            "_rules_version": pa.array(["rules-1"] * n),
        }
    )


def replace(table: pa.Table, column: str, values: list) -> pa.Table:
    position = table.schema.get_field_index(column)
    field = table.schema.field(position)
    return table.set_column(position, field, pa.array(values, field.type))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(LakeConfig(root=tmp_path / "lake"))
    lake.prepare()
    for namespace in ("raw", "curated"):
        lake.catalog.create_namespace(namespace)
    return lake


def write_config(folder: Path, lake_root: Path) -> Path:
    """A pipeline.yaml whose lake is ``lake_root`` (the source is never contacted)."""
    path = folder / "pipeline.yaml"
    path.write_text(
        f"lake: {{root: {lake_root}}}\n"
        "sources:\n"
        "  erp:\n"
        "    url: jdbc:postgresql://127.0.0.1:5432/erp\n"
        "    user: steward\n"
        "    password_env: STEWARD_TEST_UNUSED\n"
        "    tables: [{name: orders, key: order_id}]\n",
        encoding="utf-8",
    )
    return path
