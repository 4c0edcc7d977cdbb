"""The CRM REST source through the Spark batch job: paged, incremental by cursor, into Iceberg."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest

from ingest.crm import CrmCursor
from pipelines.config import LakeConfig, PipelineConfig
from pipelines.lake import Lake
from pipelines.spark_job import run_batch
from tests.ingest.crm_server import BASE_TIME, TOKEN, TOKEN_ENV, CrmServer, generate_crm_data

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def crm() -> Iterator[CrmServer]:
    with CrmServer(generate_crm_data(), token=TOKEN).running() as server:
        yield server


@pytest.fixture(scope="module")
def crm_config(crm: CrmServer, lake_config: LakeConfig) -> Iterator[PipelineConfig]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv(TOKEN_ENV, TOKEN)
        entity = {"key": "id", "updated": "updated_at", "page_size": 7}
        yield PipelineConfig.model_validate(
            {
                "lake": {"root": str(lake_config.root)},
                "sources": {
                    "crm": {
                        "kind": "rest",
                        "base_url": crm.base_url,
                        "token_env": TOKEN_ENV,
                        "entities": {
                            "accounts": {"path": "/v1/accounts", **entity},
                            "contacts": {"path": "/v1/contacts", **entity},
                            "tickets": {"path": "/v1/tickets", "dialogue": {}, **entity},
                        },
                    }
                },
                "transform": {"rule_packs": ["common"]},
            }
        )


def test_crm_entities_land_and_then_load_incrementally(
    spark: SparkSession, crm: CrmServer, crm_config: PipelineConfig
) -> None:
    lake = Lake(crm_config.lake)
    _, reports = run_batch(spark, crm_config, "test")
    read = {r.entity: r.rows_read for r in reports}
    assert read == {"accounts": 12, "contacts": 20, "tickets": 25}
    tickets = {t["_source_key"]: t for t in lake.read("curated.tickets").to_pylist()}
    assert len(tickets) == 25
    first = tickets["T-000001"]
    assert first["_source"] == "crm" and first["dialogue_text"].startswith("customer: ")
    # The cursor the read reached is committed with raw.
    summary = lake.snapshots("raw.crm_tickets")[-1]["summary"]
    cursor = CrmCursor.from_summary(summary)
    assert cursor is not None and cursor.last_key == "T-000024"

    # One ticket changes at the source: the next run reads just that one.
    changed = dict(generate_crm_data()["tickets"][3])
    changed["status"] = "solved"
    changed["subject"] = "已解决"
    changed["updated_at"] = "2031-01-01T00:00:00Z"
    crm.upsert("tickets", changed)
    _, reports = run_batch(spark, crm_config, "test")
    assert {r.entity: r.rows_read for r in reports} == {"accounts": 0, "contacts": 0, "tickets": 1}
    after = {t["_source_key"]: t for t in lake.read("curated.tickets").to_pylist()}
    assert len(after) == 25
    assert after["T-000003"]["subject"] == "已解决"
    assert [k for k in after if after[k]["_content_hash"] != tickets[k]["_content_hash"]] == [
        "T-000003"
    ]


def test_crm_rows_are_typed_by_their_contracts_and_drift_is_quarantined(
    spark: SparkSession, crm: CrmServer, crm_config: PipelineConfig
) -> None:
    lake = Lake(crm_config.lake)
    run_batch(spark, crm_config, "test")
    # JSON text at the source, a timestamp in the lake (pipelines/contracts/tickets.yaml);
    # contacts' +08:00 offsets land as the same instants in UTC.
    schema = lake.table("curated.tickets").schema().as_arrow()
    assert str(schema.field("updated_at").type).startswith("timestamp")
    contacts = {c["_source_key"]: c for c in lake.read("curated.contacts").to_pylist()}
    assert contacts["C-00001"]["updated_at"] == BASE_TIME.replace(tzinfo=UTC)

    # The vendor starts sending an account reference the contract cannot read as a number:
    # that ticket is quarantined as sent, the other change goes through.
    tickets = generate_crm_data()["tickets"]
    odd, fine = dict(tickets[5]), dict(tickets[6])
    odd.update(account_id="ACME-1005", updated_at="2031-02-01T00:00:00Z")
    fine.update(status="closed", updated_at="2031-02-01T00:00:00Z")
    crm.upsert("tickets", odd)
    crm.upsert("tickets", fine)
    _, reports = run_batch(spark, crm_config, "test")
    [report] = [r for r in reports if r.entity == "tickets"]
    assert report.rows_read == 2 and report.kept == 1
    assert report.reasons == {"contract/quarantine:quality.tickets.account_id.type": 1}
    [held] = [
        r for r in lake.read("quarantine.contract").to_pylist() if r["_source_key"] == "T-000005"
    ]
    assert json.loads(held["record"])["account_id"] == "ACME-1005"
    curated = {t["_source_key"]: t for t in lake.read("curated.tickets").to_pylist()}
    assert curated["T-000006"]["status"] == "closed"
    assert curated["T-000005"]["account_id"] == tickets[5]["account_id"]


def test_published_synthetic_samples_survive_the_next_batch_run(
    spark: SparkSession, crm_config: PipelineConfig
) -> None:
    from pyiceberg.types import BooleanType

    lake = Lake(crm_config.lake)
    run_batch(spark, crm_config, "test")
    table = lake.table("curated.accounts")
    with table.transaction() as tx:
        with tx.update_schema() as update:
            update.add_column("_synthetic", BooleanType())
        schema = tx.table_metadata.schema().as_arrow()
        row = {name: None for name in schema.names}
        row.update(_source="synth", _entity="accounts", _source_key="synth-1", _synthetic=True)
        row.update(id=99001, name="合成示例有限公司")
        tx.append(pa.Table.from_pylist([row], schema))

    run_batch(spark, crm_config, "test", full=True)
    keys = {r["_source_key"]: r for r in lake.read("curated.accounts").to_pylist()}
    assert keys["synth-1"]["_synthetic"] is True
    assert len(keys) == 13  # the 12 CRM accounts and the sample
