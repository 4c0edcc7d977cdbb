"""Stream benchmark: Kafka → Flink (transform chain) → committed Iceberg (→ knowledge base).

Starts the one-node test broker, runs ``run_stream`` (continuous) in a child process with the
stated checkpoint interval, produces JSON log events at a fixed rate for a fixed time (each
event carries its number; the producer notes when it sent it), and follows ``clean.app_logs``
snapshot by snapshot with pyiceberg (only the files each commit added are read, so watching
costs the job little). Reports:

* sustained events/s from Kafka into committed Iceberg: events committed / time from the first
  produced event to the commit of the last one;
* freshness, produce → readable in Iceberg: p50 and p95 over every event, "readable" being the
  commit time of the snapshot that holds it (the issue's goal is p95 under 10 s); bounded below
  by the checkpoint interval, since Iceberg commits on checkpoints;
* the job's CPU seconds (driver, JVM, Python worker) and events per CPU second, which the
  machine's other load does not inflate;
* with ``--kb``: freshness produce → searchable in the knowledge base (Qdrant Edge, the shipped
  all-MiniLM-L6-v2 on CPU), "searchable" being when the job's checkpoint follower recorded the
  checkpoint in the ledger, after the upsert and the store flush.

    .venv/bin/python bench/stream_kafka.py --rate 1000 --seconds 60 --checkpoint-ms 2000
    .venv/bin/python bench/stream_kafka.py --rate 50 --seconds 60 --checkpoint-ms 2000 --kb
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

RUNNER = """
import json, sys
from functools import partial
from pathlib import Path
from index.config import KnowledgeBaseConfig
from ingest.stream_config import StreamConfig
from pipelines.config import LakeConfig, PipelineConfig, TransformConfig
from pipelines.flink_job import run_stream
from pipelines.transform import build_chain

spec = json.loads(Path(sys.argv[1]).read_text())
pipeline = PipelineConfig(transform=TransformConfig(rule_packs=["logs"]))
kb = KnowledgeBaseConfig.model_validate(spec["kb"]) if spec.get("kb") else None
run_stream(LakeConfig(root=Path(spec["lake"])), StreamConfig.model_validate(spec["stream"]),
           partial(build_chain, pipeline), "bench", once=False, **({"kb": kb} if kb else {}))
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def session_cpu_seconds(session: int) -> float:
    """CPU seconds used so far by the processes of one session (the job: its Python driver,
    the Flink JVM, the Python UDF worker), from /proc. A figure the machine's other load does
    not inflate, unlike wall-clock rates on a shared box."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # session id; utime, stime, cutime, cstime follow
            total += sum(int(v) for v in fields[11:15])
    return total / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second produced")
    parser.add_argument("--seconds", type=int, default=60, help="how long to produce")
    parser.add_argument("--checkpoint-ms", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--kb", action="store_true", help="also load the knowledge base")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from ingest.kafka import KafkaClient, LocalKafka
    from pipelines.errors import LakeError
    from pipelines.lake import Lake, LakeConfig
    from pipelines.ledger import RunLedger
    from pipelines.stream_checkpoints import added_rows, new_snapshots

    work = Path(tempfile.mkdtemp(prefix="steward-stream-bench-"))
    load_before = load_average()
    with LocalKafka(work / "kafka") as kafka:
        client = KafkaClient(kafka.bootstrap_servers)
        client.create_topic("bench", args.partitions)
        spec: dict[str, object] = {
            "lake": str(work / "lake"),
            "stream": {
                "sources": {
                    "kafka": {
                        "kind": "kafka",
                        "bootstrap_servers": kafka.bootstrap_servers,
                        "topics": [{"topic": "bench", "format": "json", "entity": "app_logs"}],
                    }
                },
                "checkpoint_interval_ms": args.checkpoint_ms,
            },
        }
        if args.kb:
            spec["kb"] = {
                "collection": "bench",
                "embedding": {"device": "cpu"},
                "store": {"kind": "edge", "path": str(work / "kb")},
                "access": {"tags": [], "principals": {"ops": {}}},
                "datasets": {"app_logs": {"table": "clean.app_logs", "fields": ["message"]}},
            }
        (work / "spec.json").write_text(json.dumps(spec))
        (work / "runner.py").write_text(RUNNER)
        log = (work / "job.log").open("wb")
        job = subprocess.Popen(
            [sys.executable, str(work / "runner.py"), str(work / "spec.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lake = Lake(LakeConfig(root=work / "lake"))
        cursor: tuple[int, int] | None = None
        committed_at: dict[int, float] = {}  # event number → commit time of its snapshot
        snapshot_of: dict[int, int] = {}  # event number → its snapshot

        def follow() -> None:
            nonlocal cursor
            table = lake.table("clean.app_logs")
            for snapshot in new_snapshots(table, cursor):
                rows = added_rows(table, [snapshot], ["attributes"])
                for attributes in rows.column("attributes").to_pylist():
                    number = json.loads(attributes)["n"]
                    if number >= 0:
                        committed_at[number] = snapshot.timestamp_ms / 1000
                        snapshot_of[number] = snapshot.snapshot_id
                cursor = (snapshot.snapshot_id, snapshot.sequence_number or 0)

        ledger = RunLedger(work / "lake" / "ledger.db")

        def warm() -> bool:
            """The warm-up event is readable (and, with --kb, loaded: the model is up)."""
            try:
                if not lake.read("clean.app_logs").num_rows:
                    return False
            except LakeError:
                return False
            if not args.kb:
                return True
            return any(
                c["details"].get("knowledge_base")
                for run in ledger.list_runs()
                for c in ledger.checkpoints(run["run_id"])
            )

        # Warm-up: one event, wait until it is through (JVM, workers, tables, the model).
        client.produce("bench", [json.dumps({"time": "2024-01-01T00:00:00Z", "n": -1}).encode()])
        started = time.monotonic()
        while not warm():
            if time.monotonic() - started > 300 or job.poll() is not None:
                raise SystemExit(f"the stream job did not start; see {work / 'job.log'}")
            time.sleep(1)
        warm_up_s = time.monotonic() - started
        follow()

        produced: dict[int, float] = {}
        n = 0
        cpu_begin = session_cpu_seconds(job.pid)
        begin = time.time()
        next_poll = begin + 1
        while time.time() - begin < args.seconds or len(committed_at) < len(produced):
            now = time.time()
            if now - begin < args.seconds:
                target = int((now - begin) * args.rate)
                batch = []
                while n < target:
                    produced[n] = time.time()
                    batch.append(
                        json.dumps(
                            {
                                "time": "2024-01-01T00:00:00Z",
                                "level": "INFO",
                                "n": n,
                                "message": f"request {n} served in {n % 97} ms",
                            }
                        ).encode()
                    )
                    n += 1
                if batch:
                    client.produce("bench", batch)
            if now >= next_poll:
                follow()
                next_poll = time.time() + 0.5
            if now - begin > args.seconds + 180:
                break
            time.sleep(0.01)
        searchable_at: dict[int, float] = {}
        if args.kb:
            # The follower records a checkpoint after its knowledge-base upsert; wait for it.
            wanted = set(snapshot_of.values())
            deadline = time.time() + 180
            while time.time() < deadline:
                loaded: dict[int, float] = {}
                for run in ledger.list_runs():
                    for checkpoint in ledger.checkpoints(run["run_id"]):
                        at = datetime.fromisoformat(checkpoint["recorded_at"]).timestamp()
                        for snap in checkpoint["details"]["snapshots"].get("clean.app_logs", []):
                            loaded[snap] = at
                if wanted <= set(loaded):
                    break
                time.sleep(1)
            searchable_at = {k: loaded[s] for k, s in snapshot_of.items() if s in loaded}
        load_after = load_average()
        cpu = session_cpu_seconds(job.pid) - cpu_begin
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
        client.close()

    latencies = [committed_at[k] - produced[k] for k in committed_at if k in produced]
    last_commit = max(committed_at.values(), default=float("nan"))
    span = last_commit - begin
    result: dict[str, object] = {
        "events": len(produced),
        "committed": len(committed_at),
        "rate_offered": args.rate,
        "events_per_s": round(len(committed_at) / span, 1) if span > 0 else None,
        "freshness_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "freshness_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "checkpoint_ms": args.checkpoint_ms,
        "partitions": args.partitions,
        "warm_up_s": round(warm_up_s, 1),
        "cores": os.cpu_count(),
        "job_cpu_s": round(cpu, 1),
        "events_per_job_cpu_s": round(len(committed_at) / cpu, 1) if cpu else None,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }
    # p50 per 10 s of producing: flat when the job keeps up, rising when a backlog builds.
    by_window: dict[int, list[float]] = {}
    for k in committed_at:
        if k in produced:
            window = int((produced[k] - begin) // 10) * 10
            by_window.setdefault(window, []).append(committed_at[k] - produced[k])
    result["freshness_p50_by_10s"] = {
        f"{w}s": round(statistics.median(v), 2) for w, v in sorted(by_window.items())
    }
    if args.kb:
        searchable = [searchable_at[k] - produced[k] for k in searchable_at if k in produced]
        result["kb_loaded"] = len(searchable_at)
        result["kb_freshness_p50_s"] = (
            round(statistics.median(searchable), 2) if searchable else None
        )
        result["kb_freshness_p95_s"] = (
            round(percentile(searchable, 0.95), 2) if searchable else None
        )
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
