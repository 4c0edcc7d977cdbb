"""The ``steward`` command line.

Command groups mirror the pipeline: ``run`` (batch, stream), ``rules``, ``privacy``, ``synth``,
``kb``, ``quality``, ``runs``, ``lake``, ``demo``, ``doctor``. Heavy engines (Spark, Flink,
torch) are imported inside the commands that need them, so ``steward --help`` is instant and
starts no JVM. Every ``StewardError`` becomes one line on stderr and its documented exit code.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from pipelines.commands.common import (
    ConfigOption,
    JsonOption,
    handles_errors,
    lake_config,
    out,
    print_error,
    print_json,
)
from pipelines.commands.kb import kb_app
from pipelines.commands.lineage import lineage_command
from pipelines.commands.privacy import privacy_app
from pipelines.commands.quality import quality_app
from pipelines.commands.rules import rules_app
from pipelines.commands.stream import dev_kafka_command, stream_command
from pipelines.commands.synth import synth_app
from pipelines.config import PipelineConfig, config_hash, load_config
from pipelines.errors import ConfigError
from pipelines.schedule import parse_interval, run_every

app = typer.Typer(
    help="Steward: govern enterprise data on its way to LLM training sets and RAG.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
run_app = typer.Typer(
    help="Run the pipeline: batch (Spark) or stream (Flink).", no_args_is_help=True
)
runs_app = typer.Typer(help="The run ledger: what ran, with which counts.", no_args_is_help=True)
lake_app = typer.Typer(help="The Iceberg lake: tables, snapshots, releases.", no_args_is_help=True)
dev_app = typer.Typer(help="Local services for trying Steward by hand.", no_args_is_help=True)
for sub_app, name in (
    (run_app, "run"),
    (rules_app, "rules"),
    (privacy_app, "privacy"),
    (synth_app, "synth"),
    (kb_app, "kb"),
    (quality_app, "quality"),
    (runs_app, "runs"),
    (lake_app, "lake"),
    (dev_app, "dev"),
):
    app.add_typer(sub_app, name=name)

# -- run ---------------------------------------------------------------------------------------


@run_app.command("batch")
@handles_errors
def run_batch_command(
    config: ConfigOption = Path("pipeline.yaml"),
    full: Annotated[
        bool,
        typer.Option(
            help="Re-read everything (ignore watermarks); remove deleted keys. With --every,"
            " the first run only."
        ),
    ] = False,
    every: Annotated[
        str | None,
        typer.Option(
            help="Run again at this interval (30s, 15m, 2h) in this process until stopped"
            " (SIGTERM, Ctrl-C): Spark stays warm, so a small incremental run takes a"
            " fraction of a cold start's time. One JSON line per run with --json."
        ),
    ] = None,
    runs: Annotated[
        int | None, typer.Option(min=1, help="With --every: stop after this many runs.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Pull every configured source into the lake and run the transform chain (Spark)."""
    if every is None and runs is not None:
        raise ConfigError("--runs counts the runs of a schedule: give --every too")
    every_s = None if every is None else parse_interval(every)
    pipeline = load_config(config)
    if every_s is None:
        spark = _start_spark(pipeline)
        _print_batch(_run_batch(spark, pipeline, config, full), as_json)
        return
    _run_batch_every(pipeline, config, full, every_s, runs, as_json)


BatchOutcome = tuple[str, list[Any], float]


def _start_spark(pipeline: PipelineConfig) -> Any:
    from pipelines.lake import Lake
    from pipelines.spark_session import spark_session

    with out.status("Starting Spark…"):
        return spark_session(pipeline.spark, Lake(pipeline.lake))


def _run_batch(spark: Any, pipeline: PipelineConfig, config: Path, full: bool) -> BatchOutcome:
    import time

    from pipelines.spark_job import run_batch

    started = time.perf_counter()
    with out.status("Running the batch job…"):
        run_id, reports = run_batch(spark, pipeline, config_hash(config), full=full)
    return run_id, reports, time.perf_counter() - started


def _print_batch(outcome: BatchOutcome, as_json: bool, *, one_line: bool = False) -> None:
    from pipelines.report import batch_summary_json, print_batch_summary

    if as_json:
        print_json(batch_summary_json(*outcome), one_line=one_line)
    else:
        print_batch_summary(out, *outcome)


def _run_batch_every(
    pipeline: PipelineConfig,
    config: Path,
    full: bool,
    every_s: float,
    runs: int | None,
    as_json: bool,
) -> None:
    """``run batch --every``: one Spark session, a run every ``every_s`` seconds
    (``pipelines.schedule``). SIGTERM stops the schedule once the current run is done."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        spark = _start_spark(pipeline)
        exit_code = run_every(
            lambda full_run: _run_batch(spark, pipeline, config, full_run),
            every_s,
            runs=runs,
            full_first=full,
            on_run=lambda outcome: _print_batch(outcome, as_json, one_line=True),
            on_error=print_error,
            wait=stop.wait,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    if exit_code:
        raise typer.Exit(exit_code)


@run_app.command("stream")
def run_stream_command(
    config: ConfigOption = Path("pipeline.yaml"),
    once: Annotated[
        bool, typer.Option("--once", help="Process what is there, then stop (catch-up runs).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Follow Kafka topics and landing folders into the lake (Flink), exactly once."""
    stream_command(config, once, as_json)


@dev_app.command("kafka")
def dev_kafka(
    workdir: Annotated[Path, typer.Option(help="Broker data and log folder.")] = Path(
        ".steward/kafka"
    ),
) -> None:
    """Start the one-node Kafka broker the tests use, for trying the stream path by hand."""
    dev_kafka_command(workdir)


# -- runs --------------------------------------------------------------------------------------


@runs_app.command("list")
@handles_errors
def runs_list(
    config: ConfigOption = Path("pipeline.yaml"),
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The latest runs with their status."""
    from pipelines.ledger import RunLedger

    runs = RunLedger(lake_config(config).ledger).list_runs(limit)
    if as_json:
        print_json(runs)
        return
    table = Table("run id", "kind", "status", "exit", "started", "finished", "error")
    for run in runs:
        table.add_row(
            run["run_id"],
            run["kind"],
            run["status"],
            str(run["exit_code"] if run["exit_code"] is not None else ""),
            run["started_at"],
            run["finished_at"] or "",
            (run["error"] or "")[:80],
        )
    out.print(table)


@runs_app.command("lineage")
def runs_lineage(
    target: Annotated[
        str,
        typer.Argument(help="A curated row (<dataset>:<source key>) or a knowledge-base point id."),
    ],
    config: ConfigOption = Path("pipeline.yaml"),
    as_json: JsonOption = False,
) -> None:
    """Trace a curated row or a knowledge-base point back to its source, ingest run, rules
    and privacy policy."""
    lineage_command(target, config, as_json)


@runs_app.command("show")
@handles_errors
def runs_show(
    run_id: str, config: ConfigOption = Path("pipeline.yaml"), as_json: JsonOption = False
) -> None:
    """One run: its per-stage accounting and the Iceberg commits it made."""
    from pipelines.ledger import RunLedger

    run = RunLedger(lake_config(config).ledger).show_run(run_id)
    if run is None:
        raise ConfigError(f"no run {run_id} in the ledger")
    if as_json:
        print_json(run)
        return
    out.print(
        f"run [bold]{run['run_id']}[/bold] ({run['kind']}): {run['status']}"
        f", config {run['config_hash']}, {run['started_at']} → {run['finished_at'] or '…'}"
    )
    if run["error"]:
        out.print(f"[red]{run['error']}[/red]", highlight=False)
    stages = Table("stage", "entity", "in", "out", "quarantined", "dropped", "seconds", "reasons")
    for s in run["stages"]:
        stages.add_row(
            s["stage"],
            s["entity"],
            str(s["rows_in"]),
            str(s["rows_out"]),
            str(s["quarantined"]),
            str(s["dropped"]),
            f"{s['duration_s']:.2f}",
            ", ".join(f"{k}={v}" for k, v in s["reasons"].items()),
        )
    out.print(stages)
    commits = Table("table", "snapshot", "operation", "committed")
    for c in run["commits"]:
        commits.add_row(c["table_name"], str(c["snapshot_id"]), c["operation"], c["committed_at"])
    out.print(commits)


# -- lake --------------------------------------------------------------------------------------


@lake_app.command("tables")
@handles_errors
def lake_tables(config: ConfigOption = Path("pipeline.yaml"), as_json: JsonOption = False) -> None:
    """Every table in the lake (read with pyiceberg; no JVM)."""
    from pipelines.lake import Lake

    lake = Lake(lake_config(config))
    names = lake.tables()
    if as_json:
        print_json(names)
        return
    for name in names:
        out.print(name)


@lake_app.command("show")
@handles_errors
def lake_show(
    table: Annotated[str, typer.Argument(help="namespace.table, e.g. curated.orders")],
    config: ConfigOption = Path("pipeline.yaml"),
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """A table's schema, current snapshot and first rows."""
    from pipelines.lake import Lake

    lake = Lake(lake_config(config))
    rows = lake.read(table, limit=limit)
    snapshots = lake.snapshots(table)
    if as_json:
        print_json(
            {
                "table": table,
                "schema": [{"name": f.name, "type": str(f.type)} for f in rows.schema],
                "current_snapshot": snapshots[-1] if snapshots else None,
                "rows": rows.to_pylist(),
            }
        )
        return
    out.print(f"[bold]{table}[/bold]: {len(snapshots)} snapshots")
    if snapshots:
        out.print(f"current snapshot {snapshots[-1]['snapshot_id']} ({snapshots[-1]['operation']})")
    grid = Table(*rows.column_names)
    for row in rows.to_pylist():
        grid.add_row(*(str(v)[:40] for v in row.values()))
    out.print(grid)


@lake_app.command("snapshots")
@handles_errors
def lake_snapshots(
    table: str, config: ConfigOption = Path("pipeline.yaml"), as_json: JsonOption = False
) -> None:
    """A table's snapshots with their summaries (run ids, watermarks)."""
    from pipelines.lake import Lake

    snapshots = Lake(lake_config(config)).snapshots(table)
    if as_json:
        print_json(snapshots)
        return
    for snap in snapshots:
        run = snap["summary"].get("steward.run-id", "")
        out.print(f"{snap['snapshot_id']}  {snap['operation']:<10} {run}")


@lake_app.command("maintain")
@handles_errors
def lake_maintain(
    config: ConfigOption = Path("pipeline.yaml"),
    older_than_days: Annotated[
        float, typer.Option(min=0, help="Expire snapshots older than this many days.")
    ] = 7.0,
    retain_last: Annotated[
        int, typer.Option(min=1, help="Snapshots every table keeps, however old.")
    ] = 10,
    as_json: JsonOption = False,
) -> None:
    """Fold deletes and small files into data files and expire old snapshots (Spark).

    Batch tables between batch runs; the stream's tables at any time. Snapshots that the next
    batch run reads its incremental state from, and those the stream still needs, are kept
    whatever their age; see pipelines/maintenance.py.
    """
    from datetime import timedelta

    from pipelines.lake import Lake
    from pipelines.maintenance import TableMaintenance
    from pipelines.spark_session import spark_session

    pipeline = load_config(config)
    lake = Lake(pipeline.lake)
    with out.status("Starting Spark…"):
        spark = spark_session(pipeline.spark, lake)
    with out.status("Maintaining tables…"):
        reports = TableMaintenance(spark, lake, timedelta(days=older_than_days), retain_last).run(
            pipeline
        )
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    grid = Table(
        "table",
        "data files",
        "delete files",
        "snapshots",
        Column("kept for state", overflow="fold"),  # snapshot ids, whole
        Column("kept for stream", overflow="fold"),
    )
    for r in reports:
        grid.add_row(
            r.table,
            f"{r.before.data_files} → {r.after.data_files}",
            f"{r.before.delete_files} → {r.after.delete_files}",
            f"{r.before.snapshots} → {r.after.snapshots}",
            str(r.kept_for_state or ""),
            str(r.kept_for_stream or ""),
        )
    out.print(grid)


@lake_app.command("release")
@handles_errors
def lake_release(
    dataset: Annotated[str, typer.Argument(help="A curated table, e.g. medical_orders")],
    config: ConfigOption = Path("pipeline.yaml"),
    snapshot: Annotated[int | None, typer.Option(help="Snapshot id (default: current).")] = None,
    version: Annotated[str | None, typer.Option(help="Version name (default: next vN).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Publish an immutable plain-Parquet copy of curated.<dataset>, with its dataset card."""
    from pipelines.card import release_with_card
    from pipelines.contracts import QualityConfig
    from pipelines.lake import Lake

    quality = load_config(config).quality if config.exists() else QualityConfig()
    info = release_with_card(
        Lake(lake_config(config)), quality, dataset, snapshot_id=snapshot, version=version
    )
    if as_json:
        print_json({**info.__dict__, "path": str(info.path)})
        return
    verb = "released" if info.created else "already released"
    out.print(
        f"{verb} {info.dataset} {info.version}: {info.rows} rows of snapshot {info.snapshot_id}"
        f" at {info.path}"
    )


# -- demo, doctor --------------------------------------------------------------------------------


@app.command("demo")
@handles_errors
def demo_command(
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its PostgreSQL.")] = Path(
        ".steward/demo"
    ),
    lake_root: Annotated[Path, typer.Option("--lake", help="The lake folder.")] = Path("lake"),
    scale: Annotated[int, typer.Option(min=1, help="Demo ERP size (1 ≈ 5,000 rows).")] = 1,
    as_json: JsonOption = False,
) -> None:
    """Start a demo ERP, run the batch path end to end and publish releases."""
    from pipelines.demo import run_demo

    run_demo(workdir.resolve(), lake_root.resolve(), scale, out, as_json)


@app.command("doctor")
@handles_errors
def doctor_command(
    spark: Annotated[bool, typer.Option(help="Also start Spark and open the catalog.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the installed versions (Python, Java, jars, PostgreSQL) fit together."""
    from pipelines.doctor import print_checks, run_checks

    checks = run_checks(with_spark=spark)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        print_checks(out, checks)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def main() -> None:
    app()
