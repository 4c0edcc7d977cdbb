"""Lineage from a curated row back to raw, over a lake pyiceberg made (no JVM)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import typer

from pipelines.commands.lineage import lineage_command
from pipelines.errors import ConfigError, ExitCode, LakeError
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from pipelines.lineage import parse_target, run_events, trace, write_events
from privacy.policy import load_policy

from .conftest import T0, orders, replace, write_config

# Lake reads import pyiceberg, whose parser warns on import; nothing here to act on.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RUN_1 = "20250301T080000Z-aaaa0001"
RUN_2 = "20250302T080000Z-bbbb0002"


def build_lake(lake: Lake, policy_version: str = "orders@3") -> None:
    """raw.erp_orders with two versions of order 2; curated.orders with a synthetic row."""
    first = orders(3, run_id=RUN_1)
    second = replace(orders(3, run_id=RUN_2).slice(1, 1), "_content_hash", ["h2-new"])
    second = replace(second, "_ingested_at", [T0 + timedelta(days=1)])
    raw = lake.catalog.create_table("raw.erp_orders", schema=first.schema)
    raw.append(first, snapshot_properties={"steward.run-id": RUN_1})
    raw.append(second, snapshot_properties={"steward.run-id": RUN_2})

    curated = pa.concat_tables([first.slice(0, 1), second, first.slice(2, 1)])
    synthetic = replace(orders(1, run_id=RUN_2), "_source", ["synth"])
    synthetic = replace(synthetic, "_source_key", ["s-1"])
    curated = pa.concat_tables([curated, synthetic])
    curated = curated.append_column("_privacy_policy_version", pa.array([policy_version] * 4))
    curated = curated.append_column("_synthetic", pa.array([False, False, False, True]))
    curated = curated.append_column(
        "_seed_keys", pa.array([None, None, None, ["1", "3"]], pa.list_(pa.string()))
    )
    lake.catalog.create_table("curated.orders", schema=curated.schema).append(curated)


def test_trace_a_curated_row_to_every_raw_version(lake: Lake, tmp_path: Path) -> None:
    build_lake(lake)
    ledger = RunLedger(lake.config.ledger)
    with ledger.run("batch", "cfg", run_id=RUN_2) as run:
        run.record_commit("steward.raw.erp_orders", 2, "append")

    [found] = trace(lake, "orders", "2", ledger=ledger)
    assert (found.source, found.entity, found.source_key) == ("erp", "orders", "2")
    assert found.ingest_run == RUN_2
    assert found.rules_version == "rules-1"
    assert found.privacy_policy_version == "orders@3"
    assert found.synthetic is False and found.seed_keys == []
    assert found.raw_table == "raw.erp_orders"
    raw_snapshots = {
        s["summary"]["steward.run-id"]: s["snapshot_id"] for s in lake.snapshots("raw.erp_orders")
    }
    assert [(v.run_id, v.content_hash, v.snapshot_id) for v in found.raw_versions] == [
        (RUN_1, "h2", raw_snapshots[RUN_1]),
        (RUN_2, "h2-new", raw_snapshots[RUN_2]),
    ]
    assert found.run is not None and found.run["status"] == "succeeded"

    [synthetic] = trace(lake, "orders", "s-1")
    assert synthetic.synthetic and synthetic.seed_keys == ["1", "3"]
    assert synthetic.raw_versions == [] and synthetic.raw_table is None

    with pytest.raises(LakeError, match="no row with _source_key '99'"):
        trace(lake, "orders", "99")


POLICY = """\
version: "3"
dataset: orders
key: {env: STEWARD_TEST_UNUSED_KEY}
types: {CN_MOBILE: redact, BANK_CARD: {action: mask, keep_last: 4}}
fields:
  customer_name: {action: pseudonymize, domain: person}
"""


def test_trace_names_the_privacy_treatment_of_the_policy_version(
    lake: Lake, tmp_path: Path
) -> None:
    path = tmp_path / "orders.policy.yaml"
    path.write_text(POLICY, encoding="utf-8")
    policy = load_policy(path)
    build_lake(lake, policy_version=policy.version_tag)

    [found] = trace(lake, "orders", "2", policies={"orders": policy})
    assert found.treatment == {
        "field:customer_name": "pseudonymize (domain=person)",
        "type:BANK_CARD": "mask (char=*, keep_last=4)",
        "type:CN_MOBILE": "redact",
        "type:*": "redact",
    }
    # The policy file changed since the row was treated: no claim about how it was treated.
    path.write_text(POLICY.replace("keep_last: 4", "keep_last: 2"), encoding="utf-8")
    [found] = trace(lake, "orders", "2", policies={"orders": load_policy(path)})
    assert found.treatment is None


def test_lineage_command(lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_lake(lake)
    config = write_config(tmp_path, lake.config.root)

    lineage_command("orders:2", config, as_json=True)
    [found] = json.loads(capsys.readouterr().out)
    assert found["ingest_run"] == RUN_2 and len(found["raw_versions"]) == 2

    lineage_command("orders:s-1", config, as_json=False)
    assert "yes, seeds 1, 3" in capsys.readouterr().out

    with pytest.raises(typer.Exit) as caught:
        lineage_command("nothing", config, as_json=False)
    assert caught.value.exit_code == ExitCode.CONFIG
    with pytest.raises(typer.Exit) as caught:
        lineage_command("orders:99", config, as_json=False)
    assert caught.value.exit_code == ExitCode.LAKE
    with pytest.raises(ConfigError):
        parse_target("orders")
    assert parse_target("orders/a:b") == ("orders", "a:b")


def test_openlineage_events_for_a_run(tmp_path: Path) -> None:
    ledger = RunLedger(tmp_path / "ledger.db")
    with ledger.run("batch", "cfg", run_id=RUN_1) as run:
        run.record_commit("steward.raw.erp_orders", 1, "append")
        run.record_commit("steward.curated.orders", 2, "merge")
    record = ledger.show_run(RUN_1)
    assert record is not None
    start, complete = run_events(record, inputs=["erp.erp.orders"])
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert [o["name"] for o in complete["outputs"]] == [
        "steward.curated.orders",
        "steward.raw.erp_orders",
    ]
    assert complete["run"]["facets"]["steward"]["run_id"] == RUN_1
    path = tmp_path / "openlineage" / "events.jsonl"
    assert write_events(path, [start, complete]) == 2
    lines = path.read_text("utf-8").splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]
