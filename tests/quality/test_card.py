"""The dataset card of a release, and the release read back by two trainer-side readers."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines.card import CARD_JSON, CARD_README, describe_with_card
from pipelines.contracts import EntityContract
from pipelines.lake import Lake
from pipelines.quality import check_batch

from .conftest import orders, replace

# GX imports pyspark, whose version checks warn on import; nothing here to act on.
pytestmark = pytest.mark.filterwarnings("ignore:distutils Version classes:DeprecationWarning")


def curated_with_synthetic_rows() -> pa.Table:
    source = orders(4)
    synthetic = orders(2).set_column(
        source.schema.get_field_index("_source"), "_source", pa.array(["synth", "synth"])
    )
    synthetic = replace(synthetic, "_source_key", ["s1", "s2"])
    synthetic = replace(synthetic, "order_id", [1001, 1002])  # keys stay unique in curated
    table = pa.concat_tables([source, synthetic])
    return table.append_column("_synthetic", pa.array([False] * 4 + [True] * 2)).append_column(
        "_privacy_policy_version", pa.array(["orders@3"] * 6)
    )


def test_release_carries_a_card_and_reads_with_pyarrow_and_pandas(
    lake: Lake, contracts: dict[str, EntityContract]
) -> None:
    data = curated_with_synthetic_rows()
    lake.catalog.create_table("curated.orders", schema=data.schema).append(data)
    quality = check_batch(data, contracts["orders"], gate="curated", run_id="r-card")
    release = lake.release(
        "orders",
        describe=describe_with_card(
            contract=contracts["orders"],
            quality=[quality],
            privacy_budget={"epsilon": 0.8, "delta": 1e-6, "accountant": "rdp"},
        ),
    )

    stored = json.loads((release.path / CARD_JSON).read_text("utf-8"))
    assert stored["rows"] == 6 and stored["version"] == release.version
    assert stored["files"] == ["data/part-00000.parquet"]
    assert stored["rows_by_source"] == {"erp": 4, "synth": 2}
    assert stored["synthetic"] == {"rows": 2, "share": round(2 / 6, 6)}
    assert stored["rules_versions"] == {"rules-1": 6}
    assert stored["privacy"] == {
        "policy_versions": {"orders@3": 6},
        "budget_spent": {"epsilon": 0.8, "delta": 1e-6, "accountant": "rdp"},
    }
    assert stored["run_ids"] == ["20250301T080000Z-aaaa0001"]
    assert stored["data_time_range"]["start"] == "2025-03-01T08:01:00+00:00"
    assert stored["data_time_range"]["end"] == "2025-03-01T08:04:00+00:00"
    assert stored["quality"][0]["passed"] is True
    columns = {c["name"]: c for c in stored["schema"]}
    assert columns["status"]["description"] == "Fulfilment status."
    assert columns["amount"]["logical_type"] == "decimal"
    assert columns["_source_key"]["description"].startswith("The row's key at the source")

    readme = (release.path / CARD_README).read_text("utf-8")
    assert readme.startswith("# orders v1\n")
    assert "| erp | 4 |" in readme and "epsilon: 0.8" in readme
    assert "| status | large_string | Fulfilment status. |" in readme

    # Two readers, as a trainer would use them on the release's data folder.
    table = ds.dataset(release.path / "data", format="parquet").to_table()
    assert table.num_rows == 6
    assert table.sort_by("_source_key")["_source_key"].to_pylist() == sorted(
        data["_source_key"].to_pylist()
    )
    frame = pd.read_parquet(release.path / "data")
    assert len(frame) == 6 and int(frame["_synthetic"].sum()) == 2


def test_card_without_lineage_extras(lake: Lake) -> None:
    data = orders(3).drop_columns(["_rules_version"])
    lake.catalog.create_table("curated.bare", schema=data.schema).append(data)
    release = lake.release("bare", describe=describe_with_card())
    card = json.loads((release.path / CARD_JSON).read_text("utf-8"))
    assert card["synthetic"] == {"rows": 0, "share": 0.0}
    assert card["rules_versions"] == {}
    assert card["privacy"] == {"policy_versions": {}, "budget_spent": None}
    assert card["contract"] is None and card["quality"] == []
