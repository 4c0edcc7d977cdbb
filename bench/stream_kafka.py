"""Stream benchmark: Kafka → Flink (transform chain) → committed Iceberg, on this machine.

Starts the one-node test broker, runs ``run_stream`` (continuous) in a child process with the
stated checkpoint interval, produces JSON log events at a fixed rate for a fixed time (each
event carries its produce time), and polls ``clean.app_logs`` with pyiceberg. Reports:

* sustained events/s from Kafka into committed Iceberg (rows committed / time from first to
  last commit while producing);
* freshness, produce → readable in Iceberg: p50 and p95 over every event (the issue's goal is
  p95 under 10 s); it is bounded below by the checkpoint interval, since Iceberg commits on
  checkpoints.

    .venv/bin/python bench/stream_kafka.py --rate 2000 --seconds 60 --checkpoint-ms 2000

The knowledge base is not wired into the stream yet, so "to searchable" is not measured.
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
from pathlib import Path

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
           partial(build_chain, pipeline), "bench", once=False)
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="events per second produced")
    parser.add_argument("--seconds", type=int, default=60, help="how long to produce")
    parser.add_argument("--checkpoint-ms", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from ingest.kafka import KafkaClient, LocalKafka
    from pipelines.errors import LakeError
    from pipelines.lake import Lake, LakeConfig

    work = Path(tempfile.mkdtemp(prefix="steward-stream-bench-"))
    with LocalKafka(work / "kafka") as kafka:
        client = KafkaClient(kafka.bootstrap_servers)
        client.create_topic("bench", args.partitions)
        spec = {
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
        # Warm-up: one event, wait until it is readable (JVM, workers, tables created).
        client.produce("bench", [json.dumps({"time": "2024-01-01T00:00:00Z", "n": -1}).encode()])
        started = time.monotonic()
        while True:
            try:
                if lake.read("clean.app_logs").num_rows:
                    break
            except LakeError:
                pass
            if time.monotonic() - started > 300 or job.poll() is not None:
                raise SystemExit(f"the stream job did not start; see {work / 'job.log'}")
            time.sleep(1)

        produced: dict[int, float] = {}
        seen_at: dict[int, float] = {}
        n = 0
        begin = time.time()
        next_poll = begin + 1
        while time.time() - begin < args.seconds or len(seen_at) < len(produced):
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
                                "message": f"request {n} served",
                            }
                        ).encode()
                    )
                    n += 1
                if batch:
                    client.produce("bench", batch)
            if now >= next_poll:
                rows = lake.read("clean.app_logs").column("attributes").to_pylist()
                stamp = time.time()
                for attributes in rows:
                    number = json.loads(attributes)["n"]
                    if number >= 0:
                        seen_at.setdefault(number, stamp)
                next_poll = stamp + 0.5
            if now - begin > args.seconds + 120:
                break
            time.sleep(0.01)
        os.killpg(job.pid, signal.SIGTERM)
        job.wait(60)
        client.close()

    latencies = [seen_at[k] - produced[k] for k in seen_at if k in produced]
    commit_times = sorted(set(seen_at.values()))
    span = (commit_times[-1] - begin) if commit_times else float("nan")
    result = {
        "events": len(produced),
        "committed": len(seen_at),
        "rate_offered": args.rate,
        "events_per_s": round(len(seen_at) / span, 1) if span else None,
        "freshness_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "freshness_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
        "checkpoint_ms": args.checkpoint_ms,
        "partitions": args.partitions,
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
