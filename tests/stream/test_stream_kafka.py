"""Kafka → Flink → Iceberg exactly once, across a SIGKILL of the whole job process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import pytest

from ingest.kafka import KafkaClient, KafkaInfo
from ingest.stream_config import StreamConfig
from pipelines.chain import Chain
from pipelines.config import LakeConfig
from pipelines.errors import LakeError
from pipelines.flink_job import run_stream
from pipelines.lake import Lake
from pipelines.ledger import RunLedger

pytestmark = pytest.mark.flink

TOPIC = "app-events"
PARTITIONS = 2

# The job process the test kills: the same run_stream, continuous, from a JSON config.
RUNNER = """
import json, sys
from functools import partial
from pathlib import Path
from ingest.stream_config import StreamConfig
from pipelines.config import JdbcSource, JdbcTable, LakeConfig, PipelineConfig, TransformConfig
from pipelines.flink_job import run_stream
from pipelines.transform import build_chain

spec = json.loads(Path(sys.argv[1]).read_text())
pipeline = PipelineConfig(
    sources={"unused": JdbcSource(url="jdbc:postgresql://127.0.0.1:1/none", user="none",
             password_env="STEWARD_UNUSED", tables=[JdbcTable(name="none", key="id")])},
    transform=TransformConfig(rule_packs=["logs"]),
)
run_stream(LakeConfig(root=Path(spec["lake"])), StreamConfig.model_validate(spec["stream"]),
           partial(build_chain, pipeline), "test", once=False)
"""


def events(start: int, count: int) -> list[bytes]:
    out = []
    for n in range(start, start + count):
        if n % 50 == 7:
            out.append(b'{"time": "2024-03-05T10:00:00Z", "message": ')  # bad JSON
        else:
            out.append(
                json.dumps(
                    {
                        "time": f"2024-03-05T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
                        "level": "INFO",
                        "message": f"event {n}",
                        "n": n,
                    }
                ).encode()
            )
    return out


def positions(lake: Lake) -> Counter[str]:
    seen: Counter[str] = Counter()
    for table in ("raw.kafka_app_logs", "quarantine.ingest"):
        with contextlib.suppress(LakeError):  # not created yet
            seen.update(lake.read(table)["_source_key"].to_pylist())
    return seen


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(1)


def test_sigkill_and_restart_keep_every_event_exactly_once(
    kafka: KafkaInfo,
    kafka_client: KafkaClient,
    chain_factory: partial[Chain],
    tmp_path: Path,
) -> None:
    kafka_client.create_topic(TOPIC, PARTITIONS)
    stream = {
        "sources": {
            "kafka": {
                "kind": "kafka",
                "bootstrap_servers": kafka.bootstrap_servers,
                "topics": [{"topic": TOPIC, "format": "json", "entity": "app_logs"}],
            }
        },
        "checkpoint_interval_ms": 1000,
        "once_idle_timeout_s": 15,
    }
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"lake": str(tmp_path / "lake"), "stream": stream}))
    (tmp_path / "runner.py").write_text(RUNNER)
    lake_config = LakeConfig(root=tmp_path / "lake")
    lake = Lake(lake_config)

    kafka_client.produce(TOPIC, events(0, 300))
    log = (tmp_path / "job.log").open("wb")
    job = subprocess.Popen(
        [sys.executable, str(tmp_path / "runner.py"), str(spec)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: lake.config.ledger.exists() and sum(positions(lake).values()) > 0,
            240,
            "the first commit",
        )
        kafka_client.produce(TOPIC, events(300, 300))
        time.sleep(2)  # mid-run: some of the second batch is read, not all is committed
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the Python driver, its JVM and Python workers
        job.wait()
    committed_before_restart = sum(positions(lake).values())
    assert committed_before_restart > 0

    report = run_stream(
        lake_config, StreamConfig.model_validate(stream), chain_factory, "test", once=True
    )
    assert report.restored_from is not None and "chk-" in report.restored_from

    seen = positions(lake)
    expected = {
        f"kafka:{TOPIC}:{p}:{o}"
        for (_, p), end in kafka_client.end_offsets([TOPIC]).items()
        for o in range(end)
    }
    assert len(expected) == 600
    assert set(seen) == expected
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1][:5]
    quarantined = lake.read("quarantine.ingest")
    assert quarantined.num_rows == 12
    assert all(r.startswith(f"{TOPIC}/") for r in quarantined["_reason"].to_pylist())
    # Per checkpoint, across the killed run and the restart: every event counted once, and
    # every stage of every checkpoint balanced.
    ledger = RunLedger(lake_config.ledger)
    checkpoints = [c for r in ledger.list_runs() for c in ledger.checkpoints(r["run_id"])]
    assert len(checkpoints) >= 2
    assert len({(c["job_id"], c["checkpoint_id"]) for c in checkpoints}) == len(checkpoints)
    for checkpoint in checkpoints:
        for s in checkpoint["stages"]:
            assert s["rows_in"] == s["rows_out"] + s["quarantined"] + s["dropped"], checkpoint
    ingest = [s for c in checkpoints for s in c["stages"] if s["stage"] == "ingest"]
    assert sum(s["rows_in"] for s in ingest) == 600
    assert sum(s["quarantined"] for s in ingest) == 12


def test_the_client_works_from_a_py4j_thread_that_never_had_the_kafka_jars(
    kafka_client: KafkaClient,
) -> None:
    """py4j serves Python's calls from a pool of connections, each with its own Java thread,
    and a call takes whichever is idle: after other Python threads' calls (a stream run's), that
    can be a thread opened since, whose context class loader is the JVM's own (the flake in
    the fresh-clone CI runs). Here the serving thread is set back to that loader."""
    from pyflink.java_gateway import get_gateway

    topic = "fresh-java-thread"
    kafka_client.create_topic(topic, 1)
    jvm = get_gateway().jvm
    thread = jvm.Thread.currentThread()
    loader = thread.getContextClassLoader()
    thread.setContextClassLoader(jvm.ClassLoader.getSystemClassLoader())
    try:
        assert kafka_client.produce(topic, [b"{}", b"{}"]) == 2
        assert kafka_client.end_offsets([topic]) == {(topic, 0): 2}
        assert KafkaClient(kafka_client.bootstrap_servers).end_offsets([topic]) == {(topic, 0): 2}
    finally:
        thread.setContextClassLoader(loader)
