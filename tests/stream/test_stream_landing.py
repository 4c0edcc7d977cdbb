"""The landing folder through the real Flink job into real Iceberg tables (``--once``), with the
checkpoint follower: per-checkpoint accounting, the batch-level gate on the stream's clean
rows and the knowledge base (Qdrant Edge, the real embedding model); and the same events
through Spark with the same chain."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from index.config import KnowledgeBaseConfig
from index.embed import SentenceTransformerEmbedder
from index.search import search
from index.stores import open_store
from ingest.landing import LandingTailer
from ingest.stream_config import LandingSourceConfig, StreamConfig
from pipelines.chain import OUTCOME_FIELDS, Chain
from pipelines.config import LakeConfig, PipelineConfig
from pipelines.contracts import QualityConfig
from pipelines.flink_events import (
    EVENT_SCHEMA,
    SOURCE_SCHEMA,
    EventBatchProcessor,
    parse_events,
    reference_rows,
)
from pipelines.flink_job import StreamJob, StreamReport, run_stream
from pipelines.lake import Lake
from pipelines.ledger import RunLedger
from pipelines.quality import QualityGate, QualityReports
from pipelines.stream_checkpoints import CheckpointFollower, KnowledgeBaseFeed

from .conftest import log_chain_factory

pytestmark = pytest.mark.flink

APP_LOG = [
    "2024-03-05 10:00:00,123 INFO [main] com.acme.App - started"
    " trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
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
    "trace_id",  # written by an extract rule of the logs pack
]


# The app_logs contract the stream's clean rows are checked against (access_logs has none,
# so its rows pass the gate unchecked, as an entity without a contract does in batch).
APP_LOGS_CONTRACT = """
entity: app_logs
version: 1
description: Application log events, one row per event read.
key: _source_key
columns:
  - {name: _source_key, type: string, required: true, description: Where the event was read.}
  - {name: event_time, type: timestamp, required: true, description: When it happened (UTC).}
  - name: level
    type: string
    allowed: [TRACE, DEBUG, INFO, WARN, WARNING, ERROR, FATAL]
    description: Log level.
  - {name: message, type: string, description: The event text after cleaning.}
  - {name: origin, type: string, required: true, description: file@offset of the event.}
"""


def write_lines(path: Path, lines: list[str], mode: str = "a") -> None:
    with path.open(mode, encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in lines)


def source_rows(source: LandingSourceConfig) -> list[dict[str, object]]:
    """The folder's events as a source hands them to the processor (``SOURCE_SCHEMA``)."""
    return [
        {
            "payload": e.payload,
            "source": "shipper",
            "entity": e.entity,
            "format": e.format,
            "source_key": e.source_key,
            "origin": e.origin,
        }
        for e in LandingTailer(source, {}).read_all()
    ]


def kb_config(root: Path) -> KnowledgeBaseConfig:
    return KnowledgeBaseConfig.model_validate(
        {
            "collection": "stream_logs",
            "embedding": {"device": "cpu"},
            "chunking": {"max_tokens": 64, "overlap_tokens": 8},
            "store": {"kind": "edge", "path": str(root / "kb")},
            "access": {"tags": [], "principals": {"ops": {}}},
            "datasets": {"app_logs": {"table": "clean.app_logs", "fields": ["message"]}},
        }
    )


@dataclass
class LandingRuns:
    lake: Lake
    stream: StreamConfig
    chain_factory: partial[Chain]
    quality: QualityConfig
    kb: KnowledgeBaseConfig
    embedder: SentenceTransformerEmbedder
    first: StreamReport
    reference: pa.Table
    events: list[dict[str, object]]

    def run(self) -> StreamReport:
        return run_stream(
            self.lake.config,
            self.stream,
            self.chain_factory,
            "test",
            once=True,
            quality=self.quality,
            kb=self.kb,
            embedder=self.embedder,
        )


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
    tmp_path_factory: pytest.TempPathFactory,
    flink_gateway: None,
    embedder: SentenceTransformerEmbedder,
) -> LandingRuns:
    folder = tmp_path_factory.mktemp("landing")
    write_lines(folder / "app.log", APP_LOG)
    write_lines(folder / "access.log", ACCESS_LOG)
    (folder / "events").mkdir()
    write_lines(folder / "events" / "a.jsonl", EVENTS_JSONL)
    (folder / "events" / "bad.jsonl").write_bytes(
        b'{"time": "2024-03-05T10:00:00Z", "message": "\xff"}\n'
    )
    contracts = tmp_path_factory.mktemp("contracts")
    (contracts / "app_logs.yaml").write_text(APP_LOGS_CONTRACT, encoding="utf-8")
    quality = QualityConfig(contracts_dir=contracts, data_docs=False)
    chain_factory = log_chain_factory(quality)
    stream = stream_config(folder)
    root = tmp_path_factory.mktemp("stream-lake")
    events = source_rows(stream.sources["shipper"])  # type: ignore[arg-type]
    processor = EventBatchProcessor(
        chain_factory, ["app_logs", "access_logs"], {}, run_id="reference", max_event_bytes=1 << 20
    )
    reference = reference_rows(processor, events)
    runs = LandingRuns(
        Lake(LakeConfig(root=root)),
        stream,
        chain_factory,
        quality,
        kb_config(root),
        embedder,
        None,  # type: ignore[arg-type]
        reference,
        events,
    )
    runs.first = runs.run()
    return runs


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
    trace_ids = [r["trace_id"] for r in clean_rows(runs.lake, "app_logs")]
    assert trace_ids.count("4bf92f3577b34da6a3ce929d0e0e4736") == 1
    assert trace_ids.count(None) == len(trace_ids) - 1


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
    assert sorted(runs.lake.read("audit.stream_drops")["_rule_id"].to_pylist()) == [
        "logs.noise.blank",
        "logs.noise.healthcheck",
    ]


def test_every_checkpoint_balances_and_the_checkpoints_add_up_to_the_run(
    runs: LandingRuns,
) -> None:
    run = RunLedger(runs.lake.config.ledger).show_run(runs.first.run_id)
    assert run is not None and run["checkpoints"]
    totals: dict[tuple[str, str], list[int]] = {}
    for checkpoint in run["checkpoints"]:
        assert checkpoint["run_id"] == runs.first.run_id
        for s in checkpoint["stages"]:
            assert s["rows_in"] == s["rows_out"] + s["quarantined"] + s["dropped"], checkpoint
            total = totals.setdefault((s["entity"], s["stage"]), [0, 0, 0, 0])
            for i, key in enumerate(("rows_in", "rows_out", "quarantined", "dropped")):
                total[i] += s[key]
    assert totals == {
        (s["entity"], s["stage"]): [s["rows_in"], s["rows_out"], s["quarantined"], s["dropped"]]
        for s in run["stages"]
    }
    ingest = sum(s["rows_in"] for s in run["stages"] if s["stage"] == "ingest")
    assert ingest == runs.reference.num_rows
    clean = sum(c["details"]["rows"].get("clean.app_logs", 0) for c in run["checkpoints"])
    assert clean == runs.lake.read("clean.app_logs").num_rows


def test_the_batch_gate_checked_the_stream_clean_rows(runs: LandingRuns) -> None:
    results = QualityReports(runs.lake.config.root).results(runs.first.run_id)
    # access_logs has no contract: like an entity without one in batch, it is not checked.
    assert [(r.entity, r.gate, r.passed) for r in results] == [("app_logs", "clean", True)]
    assert results[0].rows == runs.lake.read("clean.app_logs").num_rows
    checks = {c.name: c.success for c in results[0].checks}
    assert checks["app_logs.schema"] and checks["app_logs.key.unique"]
    assert runs.first.checkpoints and all(c.quality == "passed" for c in runs.first.checkpoints)


def test_log_events_are_searchable_in_the_knowledge_base(runs: LandingRuns) -> None:
    loaded = runs.first.knowledge_base["app_logs"]
    clean = runs.lake.read("clean.app_logs")
    assert loaded.rows == clean.num_rows and loaded.upserted == loaded.chunks > 0
    store = open_store(runs.kb)
    try:
        assert store.count() == loaded.chunks
        hits = search(
            runs.kb,
            runs.embedder,
            store,
            "IllegalStateException thrown in Job.run",
            principal="ops",
            k=3,
        )
    finally:
        store.close()
    failed = next(r for r in clean.to_pylist() if "Job.java:42" in r["message"])
    assert hits[0].metadata["_source_key"] == failed["_source_key"]
    assert hits[0].metadata["_run_id"] == runs.first.run_id


@pytest.mark.spark
def test_spark_over_the_same_events_gives_the_same_clean_rows(runs: LandingRuns, spark) -> None:
    """One chain, two engines: the batch side parses the same events with the same code in a
    Spark ``mapInArrow`` and applies ``build_chain`` through the batch job's own adapter."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    from pipelines.spark_job import _tag_partitions

    def parse(batches):
        for batch in batches:
            events, _ = parse_events(
                pa.Table.from_batches([batch]), {}, run_id="spark", max_event_bytes=1 << 20
            )
            yield from events.to_batches()

    frame = spark.createDataFrame(
        [tuple(e[name] for name in SOURCE_SCHEMA.names) for e in runs.events],
        from_arrow_schema(SOURCE_SCHEMA),
    )
    # One partition: a handful of events, and each Python worker would compile the packs.
    parsed = frame.coalesce(1).mapInArrow(parse, from_arrow_schema(EVENT_SCHEMA)).cache()
    for entity in ("app_logs", "access_logs"):
        chain = runs.chain_factory(entity)
        rows = parsed.where(F.col("_entity") == entity)
        output = chain.output_schema(to_arrow_schema(rows.schema))
        tagged = rows.mapInArrow(_tag_partitions(chain), from_arrow_schema(output))
        kept = tagged.where(F.col("_outcome") == "keep").drop(*(f.name for f in OUTCOME_FIELDS))
        batch = pa.Table.from_batches(kept._collect_as_arrow())
        stream = runs.lake.read(f"clean.{entity}")
        stream = stream.filter(pa.compute.equal(stream["_run_id"], runs.first.run_id))
        # Everything but what names the run: which run, and when it read the event.
        compared = sorted(set(stream.column_names) - {"_run_id", "_ingested_at"})
        assert set(compared) <= set(batch.column_names)
        assert batch.num_rows == stream.num_rows > 0
        assert sorted(batch.select(compared).to_pylist(), key=str) == sorted(
            stream.select(compared).to_pylist(), key=str
        )


def test_append_and_rotation_between_runs_lose_and_repeat_nothing(runs: LandingRuns) -> None:
    folder = runs.stream.sources["shipper"].path  # type: ignore[union-attr]
    write_lines(folder / "app.log", ["2024-03-05 11:00:00,000 INFO [main] com.acme.App - appended"])
    os.rename(folder / "app.log", folder / "app.log.1")
    write_lines(folder / "app.log", ["2024-03-05 11:00:01,000 INFO [main] com.acme.App - rotated"])
    second = runs.run()
    assert second.restored_from is not None
    raw = runs.lake.read("raw.shipper_app_logs")
    keys = raw["_source_key"].to_pylist()
    assert len(keys) == len(set(keys))
    new = raw.filter(pa.compute.equal(raw["_run_id"], second.run_id))["message"].to_pylist()
    assert sorted(new) == ["appended", "rotated"]
    # The knowledge base received the two new events, and only them.
    loaded = second.knowledge_base["app_logs"]
    assert (loaded.rows, loaded.embedded, loaded.upserted, loaded.unchanged) == (2, 2, 2, 0)
    store = open_store(runs.kb)
    try:
        assert store.count() == runs.first.knowledge_base["app_logs"].chunks + 2
    finally:
        store.close()


def test_following_the_same_checkpoints_again_doubles_nothing(runs: LandingRuns) -> None:
    """A driver that crashed after loading the knowledge base but before recording the
    checkpoint meets the same commits again: nothing is embedded or counted twice."""
    ledger = RunLedger(runs.lake.config.ledger)
    with sqlite3.connect(ledger.path) as db:
        recorded = db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
        db.execute("DELETE FROM stream_cursors")
    store = open_store(runs.kb)
    try:
        points = store.count()
    finally:
        store.close()
    job = StreamJob(runs.lake.config, runs.stream, runs.chain_factory, "replay")
    feed = KnowledgeBaseFeed(runs.kb, job.sinks().clean.values(), runs.embedder)
    try:
        with ledger.run("stream", "test") as run:
            follower = CheckpointFollower(
                job.lake,
                job.sinks(),
                run,
                gate=QualityGate(runs.quality, runs.lake.config.root),
                knowledge_base=feed,
            )
            replayed = [c for c in follower.poll(final=True) if c.rows]
    finally:
        feed.close()
    loaded = feed.reports["app_logs"]
    assert (loaded.embedded, loaded.upserted, loaded.unchanged) == (0, 0, points)
    store = open_store(runs.kb)
    try:
        assert store.count() == points
    finally:
        store.close()
    with sqlite3.connect(ledger.path) as db:
        owners = db.execute("SELECT run_id FROM checkpoints").fetchall()
    assert len(owners) == recorded == len(replayed)
    assert {owner for (owner,) in owners} == {run.run_id}
    ingest = sum(c.rows_in for c in follower.totals() if c.stage == "ingest")
    lake_rows = sum(
        runs.lake.read(name).num_rows
        for name in ("raw.shipper_app_logs", "raw.shipper_access_logs", "quarantine.ingest")
    )
    assert ingest == lake_rows


def test_maintenance_compacts_stream_tables_and_keeps_what_the_stream_needs(
    runs: LandingRuns, spark
) -> None:
    """``steward lake maintain`` on the stream's tables: small files bin-packed, rows
    unchanged, old snapshots expired except those the follower has not handled and the last
    stream commit; the next run restores and follows from there, repeating nothing."""
    from pipelines.maintenance import TableFiles, TableMaintenance, is_stream_table
    from pipelines.stream_checkpoints import checkpoint_key, new_snapshots

    lake = runs.lake
    raw, clean = "raw.shipper_app_logs", "clean.app_logs"
    names = sorted(n for n in lake.tables() if is_stream_table(lake.table(n)))
    assert {raw, clean, "quarantine.ingest"} <= set(names)
    before = {n: TableFiles.of(lake.table(n)) for n in names}
    assert before[raw].data_files >= 2 and before[clean].data_files >= 2
    rows = {n: sorted(lake.read(n).to_pylist(), key=str) for n in names}

    # The follower is behind on raw: its cursor back at raw's first stream commit.
    ledger = RunLedger(lake.config.ledger)
    handled = ledger.stream_cursors()[raw]
    first = next(s for s in lake.table(raw).snapshots() if checkpoint_key(s))
    clean_first = lake.table(clean).snapshots()[0]
    _set_cursor(ledger, raw, (first.snapshot_id, first.sequence_number or 0))
    unread = [s.snapshot_id for s in new_snapshots(lake.table(raw), ledger.stream_cursors()[raw])]
    assert unread

    # This lake is not the session's: a second Spark session mounts it as its catalog.
    session = spark.newSession()
    for key, value in lake.spark_catalog_conf().items():
        session.conf.set(key, value)
    reports = TableMaintenance(session, lake, timedelta(0), retain_last=1).run(
        PipelineConfig(lake=lake.config)
    )

    by_table = {r.table: r for r in reports}
    assert sorted(by_table) == names
    assert by_table[raw].after.data_files == 1 and by_table[clean].after.data_files == 1
    assert {n: sorted(lake.read(n).to_pylist(), key=str) for n in names} == rows
    kept_raw = {s.snapshot_id for s in lake.table(raw).snapshots()}
    assert set(unread) <= kept_raw and first.snapshot_id not in kept_raw
    assert by_table[raw].kept_for_stream == unread[0]
    # Clean was followed to the end: what remains starts at its last stream commit.
    clean_table = lake.table(clean)
    commits = [s for s in clean_table.snapshots() if checkpoint_key(s)]
    assert len(commits) == 1 and by_table[clean].kept_for_stream == commits[0].snapshot_id
    assert clean_first.snapshot_id not in {s.snapshot_id for s in clean_table.snapshots()}

    # The follower catches up on raw, then a new event goes through a restored job once.
    _set_cursor(ledger, raw, handled)
    folder = runs.stream.sources["shipper"].path  # type: ignore[union-attr]
    write_lines(folder / "app.log", ["2024-03-05 12:00:00,000 INFO [main] com.acme.App - after"])
    third = runs.run()
    assert third.restored_from is not None
    keys = lake.read(raw)["_source_key"].to_pylist()
    assert len(keys) == len(set(keys)) == len(rows[raw]) + 1
    assert lake.read(clean).num_rows == len(rows[clean]) + 1


def test_a_column_the_rules_add_later_is_added_to_the_existing_clean_table(
    runs: LandingRuns,
) -> None:
    """A lake whose clean table predates an extract rule (here: trace_id dropped from it)
    gets the column when the next run starts, with a warning in the ledger; the rows
    written before read null there, and the run's new rows carry their trace id."""
    lake = runs.lake
    with lake.table("clean.app_logs").update_schema() as update:
        update.delete_column("trace_id")
    rows_before = lake.read("clean.app_logs").num_rows
    folder = runs.stream.sources["shipper"].path  # type: ignore[union-attr]
    traced = "2024-03-05 13:00:00,000 INFO [main] com.acme.App - late traceId: a3ce929d0e0e4736"
    write_lines(folder / "app.log", [traced])
    report = runs.run()
    clean = lake.read("clean.app_logs")
    assert clean.num_rows == rows_before + 1
    new = clean.filter(pa.compute.equal(clean["_run_id"], report.run_id))
    assert new["trace_id"].to_pylist() == ["a3ce929d0e0e4736"]
    old = clean.filter(pa.compute.not_equal(clean["_run_id"], report.run_id))
    assert old["trace_id"].null_count == old.num_rows == rows_before
    run = RunLedger(lake.config.ledger).show_run(report.run_id)
    assert run is not None
    assert "clean.app_logs: new column trace_id added (nullable)" in run["warnings"]


def _set_cursor(ledger: RunLedger, table: str, cursor: tuple[int, int]) -> None:
    with sqlite3.connect(ledger.path) as db:
        db.execute(
            "UPDATE stream_cursors SET snapshot_id = ?, sequence_number = ? WHERE table_name = ?",
            (*cursor, table),
        )
