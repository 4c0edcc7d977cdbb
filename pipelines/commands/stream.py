"""``steward run stream`` (the Flink job) and ``steward dev kafka`` (a local broker by hand).

The CLI registers these functions. A stream-only deployment needs no batch sources: the
``stream:`` section of ``pipeline.yaml`` names the Kafka topics and landing folders.
"""

from __future__ import annotations

import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

from ingest.stream_config import StreamConfig
from pipelines.commands.common import handles_errors, out, print_json
from pipelines.config import PipelineConfig
from pipelines.errors import ConfigError


def load_stream_config(path: Path) -> tuple[PipelineConfig, StreamConfig]:
    """The pipeline (for ``build_chain``) and its stream section, paths anchored at the file."""
    from pipelines.config import load_config

    pipeline = load_config(path)
    if pipeline.stream is None:
        raise ConfigError(f"{path}: no stream section (see `steward run stream --help`)")
    return pipeline, pipeline.stream


@handles_errors
def stream_command(config: Path, once: bool, as_json: bool) -> None:
    """Follow the configured Kafka topics and landing folders into the lake.

    Runs until Ctrl-C or SIGTERM (then stops with a savepoint), or with ``once`` until every
    source is caught up. Each start resumes where the last run's checkpoint or savepoint left.
    Every committed checkpoint is counted in the ledger, checked by the contracts' batch-level
    gate and, with a ``kb`` section whose datasets read ``clean.<entity>``, loaded into the
    knowledge base.
    """
    from pipelines.config import config_hash
    from pipelines.flink_job import run_stream
    from pipelines.transform import build_chain

    pipeline, stream = load_stream_config(config)
    stop = threading.Event()
    if not once:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
    with out.status("Running the stream job…" if once else "Streaming (Ctrl-C stops)…"):
        report = run_stream(
            pipeline.lake,
            stream,
            partial(build_chain, pipeline),
            config_hash(config),
            once=once,
            should_stop=stop.is_set,
            quality=pipeline.quality,
            kb=pipeline.kb,
        )
    summary: dict[str, Any] = {
        "run_id": report.run_id,
        "restored_from": report.restored_from,
        "seconds": round(report.seconds, 1),
        "tables": report.tables,
        "stages": [s.__dict__ for s in report.stages],
        "checkpoints": [c.__dict__ for c in report.checkpoints],
        "knowledge_base": {k: r.to_json() for k, r in report.knowledge_base.items()},
    }
    if as_json:
        print_json(summary)
        return
    out.print(
        f"stream run [bold]{report.run_id}[/bold] in {report.seconds:.1f}s,"
        f" {len(report.checkpoints)} checkpoints with rows"
    )
    for table, rows in report.tables.items():
        out.print(f"  {table}: {rows} rows")
    for dataset, loaded in report.knowledge_base.items():
        out.print(
            f"  knowledge base {dataset}: {loaded.rows} rows, {loaded.upserted} points upserted,"
            f" {loaded.unchanged} unchanged"
        )


@handles_errors
def dev_kafka_command(workdir: Path = Path(".steward/kafka")) -> None:
    """Start the same one-node Kafka broker the tests use, and wait (Ctrl-C stops it)."""
    from ingest.kafka import LocalKafka

    broker = LocalKafka(workdir.resolve())
    info = broker.start()
    out.print(
        f"Kafka at [bold]{info.bootstrap_servers}[/bold]"
        f" (data {info.data_dir}, log {info.log_file})"
    )
    out.print("Ctrl-C stops it.")
    try:
        broker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
