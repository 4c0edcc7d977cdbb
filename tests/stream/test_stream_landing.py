"""The landing folder through the real Flink job into real Iceberg tables (``--once``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.landing import LandingTailer
from ingest.stream_config import StreamConfig
from pipelines.chain import Chain
from pipelines.config import LakeConfig
from pipelines.flink_events import EventBatchProcessor, reference_rows
from pipelines.flink_job import StreamReport, run_stream
from pipelines.lake import Lake
from pipelines.ledger import RunLedger

pytestmark = pytest.mark.flink

APP_LOG = [
    "2024-03-05 10:00:00,123 INFO [main] com.acme.App - started",
    "2024-03-05 10:00:01,000 ERROR [worker-1] com.acme.Job - failed",
    "java.lang.IllegalStateException: boom",
    "\tat com.acme.Job.run(Job.java:42)",
    "2024-03-05 10:00:02,000 INFO [main] com.acme.App - \x1b[31mred\x1b[0m done",
    "2024-13-45 10:00:03,000 INFO [main] com.acme.App - a month that does not exist",
]
ACCESS_LOG = [
    '10.0.0.7 - - [05/Mar/2024:10:00:00 +0800] "GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.29"',
    '10.0.0.9 - - [05/Mar/2024:10:00:02 +0800] "GET /api/x HTTP/1.1" 200 512 "-" "curl/8"',
    "not an access line",
]
EVENTS_JSONL = [
    '{"time": "2024-03-05T10:00:00Z", "level": "INFO", "message": "\\u001b[1;32mOK\\u001b[m"}',
    '{"time": "2024-03-05T10:00:01Z", "level": "INFO", "message": "   "}',
    '{"time": "2024-03-05T10:00:02Z", "message": ',
]
COMPARED = [
    "_source_key",
    "_entity",
    "event_time",
    "level",
    "logger",
    "message",
    "attributes",
    "origin",
    "_content_hash",
    "_rules_version",
]


def write_lines(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


@dataclass
class LandingRuns:
    lake: Lake
    stream: StreamConfig
    chain_factory: partial[Chain]
    first: StreamReport
    reference: pa.Table
    second: StreamReport | None = None


def stream_config(folder: Path) -> StreamConfig:
    return StreamConfig.model_validate(
        {
            "sources": {
                "shipper": {
                    "kind": "landing",
                    "path": str(folder),
                    "settle_s": 0,
                    "files": [
                        {"glob": "app.log*", "format": "java_app", "entity": "app_logs"},
                        {"glob": "access.log*", "format": "nginx_access", "entity": "access_logs"},
                        {"glob": "events/*.jsonl", "format": "json", "entity": "app_logs"},
                    ],
                }
            },
            "checkpoint_interval_ms": 1000,
            "poll_interval_ms": 200,
            "once_idle_timeout_s": 10,
        }
    )


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, flink_gateway: None, chain_factory: partial[Chain]
) -> LandingRuns:
    folder = tmp_path_factory.mktemp("landing")
    write_lines(folder / "app.log", APP_LOG)
    write_lines(folder / "access.log", ACCESS_LOG)
    (folder / "events").mkdir()
    write_lines(folder / "events" / "a.jsonl", EVENTS_JSONL)
    (folder / "events" / "bad.jsonl").write_bytes(
        b'{"time": "2024-03-05T10:00:00Z", "message": "\xff"}\n'
    )
    stream = stream_config(folder)
    lake_config = LakeConfig(root=tmp_path_factory.mktemp("stream-lake"))
    source = stream.sources["shipper"]
    events = LandingTailer(source, {}).read_all()  # type: ignore[arg-type]
    processor = EventBatchProcessor(
        chain_factory, ["app_logs", "access_logs"], {}, run_id="reference", max_event_bytes=1 << 20
    )
    reference = reference_rows(
        processor,
        [
            {
                "payload": e.payload,
                "source": "shipper",
                "entity": e.entity,
                "format": e.format,
                "source_key": e.source_key,
                "origin": e.origin,
            }
            for e in events
        ],
    )
    first = run_stream(lake_config, stream, chain_factory, "test", once=True)
    return LandingRuns(Lake(lake_config), stream, chain_factory, first, reference)


def clean_rows(lake: Lake, entity: str) -> list[dict[str, object]]:
    rows = lake.read(f"clean.{entity}").select(COMPARED).to_pylist()
    return sorted(rows, key=lambda r: str(r["_source_key"]))


def test_clean_rows_equal_the_chain_in_plain_python(runs: LandingRuns) -> None:
    kept = runs.reference.filter(pa.compute.equal(runs.reference["_outcome"], "keep"))
    for entity in ("app_logs", "access_logs"):
        expected = kept.filter(pa.compute.equal(kept["_entity"], entity)).select(COMPARED)
        assert clean_rows(runs.lake, entity) == sorted(
            expected.to_pylist(), key=lambda r: str(r["_source_key"])
        )
    messages = [r["message"] for r in clean_rows(runs.lake, "app_logs")]
    assert "red done" in messages and "OK" in messages  # the logs pack ran
    assert any("Job.java:42" in str(m) for m in messages)  # the stack trace stayed with its event


def test_malformed_events_are_quarantined_with_file_and_offset(runs: LandingRuns) -> None:
    rows = runs.lake.read("quarantine.ingest").to_pylist()
    by_rule = {r["_rule_id"]: r for r in rows}
    assert set(by_rule) == {
        "ingest.bad_timestamp",
        "ingest.no_match",
        "ingest.bad_json",
        "ingest.invalid_utf8",
    }
    bad_json = by_rule["ingest.bad_json"]
    offset = sum(len(line.encode()) + 1 for line in EVENTS_JSONL[:2])
    assert bad_json["_reason"].startswith(f"events/a.jsonl@{offset}: invalid JSON")
    assert by_rule["ingest.invalid_utf8"]["_reason"].startswith("events/bad.jsonl@0:")
    assert by_rule["ingest.no_match"]["_entity"] == "access_logs"
    assert all(r["record"] and r["_quarantined_at"] for r in rows)


def test_raw_holds_every_parsed_event_and_the_ledger_balances(runs: LandingRuns) -> None:
    raw = (
        runs.lake.read("raw.shipper_app_logs").num_rows
        + runs.lake.read("raw.shipper_access_logs").num_rows
    )
    quarantined = runs.lake.read("quarantine.ingest").num_rows
    assert raw + quarantined == runs.reference.num_rows
    run = RunLedger(runs.lake.config.ledger).show_run(runs.first.run_id)
    assert run is not None and run["status"] == "succeeded"
    for stage in run["stages"]:
        assert stage["rows_in"] == stage["rows_out"] + stage["quarantined"] + stage["dropped"]
    drops = {k: v for s in run["stages"] for k, v in s["reasons"].items() if k.startswith("drop:")}
    assert drops == {"drop:logs.noise.healthcheck": 1, "drop:logs.noise.blank": 1}


def test_append_and_rotation_between_runs_lose_and_repeat_nothing(runs: LandingRuns) -> None:
    folder = runs.stream.sources["shipper"].path  # type: ignore[union-attr]
    write_lines(folder / "app.log", ["2024-03-05 11:00:00,000 INFO [main] com.acme.App - appended"])
    os.rename(folder / "app.log", folder / "app.log.1")
    write_lines(folder / "app.log", ["2024-03-05 11:00:01,000 INFO [main] com.acme.App - rotated"])
    second = run_stream(runs.lake.config, runs.stream, runs.chain_factory, "test", once=True)
    assert second.restored_from is not None
    raw = runs.lake.read("raw.shipper_app_logs")
    keys = raw["_source_key"].to_pylist()
    assert len(keys) == len(set(keys))
    new = raw.filter(pa.compute.equal(raw["_run_id"], second.run_id))["message"].to_pylist()
    assert sorted(new) == ["appended", "rotated"]
