"""``steward run stream`` (the Flink job) and ``steward dev kafka`` (a local broker by hand).

The CLI registers these functions; they read only the sections of ``pipeline.yaml`` the stream
needs (``lake``, ``transform``, ``privacy``, ``stream``), so a stream-only deployment needs no
batch sources.
"""

from __future__ import annotations

import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ingest.stream_config import StreamConfig
from pipelines.commands.common import handles_errors, out, print_json
from pipelines.config import LakeConfig, PipelineConfig, PrivacyConfig, TransformConfig
from pipelines.errors import ConfigError


class _StreamFile(BaseModel):
    """The sections of ``pipeline.yaml`` the stream uses; the rest is someone else's."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    lake: LakeConfig = LakeConfig()
    transform: TransformConfig = TransformConfig()
    privacy: PrivacyConfig | None = None
    stream: StreamConfig | None = None


def load_stream_config(path: Path) -> tuple[PipelineConfig, StreamConfig]:
    """The pipeline (for ``build_chain``) and its stream section, paths anchored at the file."""
    from pipelines.yaml_models import load_yaml_model

    file = load_yaml_model(path, _StreamFile)
    if file.stream is None:
        raise ConfigError(f"{path}: no stream section (see `steward run stream --help`)")
    base = path.resolve().parent

    def anchor(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    lake = file.lake.model_copy(update={"root": anchor(file.lake.root)})
    privacy = file.privacy
    if privacy is not None:
        privacy = privacy.model_copy(
            update={
                "policies": {k: anchor(v) for k, v in privacy.policies.items()},
                "default": anchor(privacy.default) if privacy.default else None,
            }
        )
    # build_chain reads transform and privacy only; the batch sources are not needed here.
    pipeline = PipelineConfig.model_construct(
        lake=lake, transform=file.transform, privacy=privacy, sources={}
    )
    return pipeline, file.stream.resolved(base)


@handles_errors
def stream_command(config: Path, once: bool, as_json: bool) -> None:
    """Follow the configured Kafka topics and landing folders into the lake.

    Runs until Ctrl-C or SIGTERM (then stops with a savepoint), or with ``once`` until every
    source is caught up. Each start resumes where the last run's checkpoint or savepoint left.
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
        )
    summary: dict[str, Any] = {
        "run_id": report.run_id,
        "restored_from": report.restored_from,
        "seconds": round(report.seconds, 1),
        "tables": report.tables,
        "stages": [s.__dict__ for s in report.stages],
    }
    if as_json:
        print_json(summary)
        return
    out.print(f"stream run [bold]{report.run_id}[/bold] in {report.seconds:.1f}s")
    for table, rows in report.tables.items():
        out.print(f"  {table}: {rows} rows")


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
