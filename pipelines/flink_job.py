"""The stream job on PyFlink: Kafka topics and landing folders → raw → chain → clean, quarantine.

Graph (one Flink job, local mini-cluster by default, the same job on a cluster):

    Kafka table source (raw bytes + topic/partition/offset) ─┐
    landing ticks → keyed tailer (cursors in Flink state) ───┴─> union
        → Arrow map: parse, lineage, the transform chain (``pipelines.flink_events``)
        → Iceberg sinks: raw.<source>_<entity>, clean.<entity>, quarantine.<stage>,
          audit.stream_drops (keys and rule of the rows a rule dropped)

Exactly once: source positions (Kafka offsets, file cursors) live in Flink checkpoints and the
Iceberg sinks commit on the same checkpoints, so after a crash the job resumes from the newest
retained checkpoint and re-emits exactly what the lake has not committed. Stream tables only
append (pyiceberg 0.8 cannot read the equality deletes an upsert writes).

``--once`` runs the same job from the same state until every source is caught up, then stops
it with a savepoint (which commits the last events); the next run resumes from that savepoint.
Flink only executes: what happens to an event is decided by ``EventBatchProcessor``. What
happens after a commit (per-checkpoint accounting, the batch-level quality gate, the knowledge
base) is the driver's ``CheckpointFollower`` (``pipelines.stream_checkpoints``), which reads
only what the lake has committed, so it inherits the sinks' exactly-once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ingest.landing import LandingTailer, cursors_from_json, cursors_to_json
from ingest.logs import EVENT_FIELDS, resolve_format
from ingest.stream_config import KafkaSourceConfig, LandingSourceConfig, StreamConfig
from pipelines.chain import Chain
from pipelines.config import LakeConfig
from pipelines.errors import ConfigError, LakeError, SourceError, StewardError
from pipelines.flink_events import (
    INGEST_STAGE,
    LINEAGE_FIELDS,
    SOURCE_SCHEMA,
    EventBatchProcessor,
    entity_schema,
    tagged_schema,
)
from pipelines.lake import Lake, new_column_warning, raw_table_name
from pipelines.ledger import RunLedger, StageCounts, new_run_id
from pipelines.stream_checkpoints import (
    DROPS_TABLE,
    CheckpointFollower,
    CheckpointSummary,
    KnowledgeBaseFeed,
    StreamTables,
)

if TYPE_CHECKING:
    from pyflink.common import JobClient
    from pyflink.table import StreamTableEnvironment, Table

    from index.config import KnowledgeBaseConfig
    from index.embed import Embedder
    from index.loader import LoadReport
    from pipelines.contracts import QualityConfig

logger = logging.getLogger(__name__)

_TABLE_PROPERTIES = {"format-version": "2", "write.parquet.compression-codec": "zstd"}
_QUARANTINE_COLUMNS = ("_stage", "_rule_id", "_reason")
_POLL_S = 0.5
_STOP_TIMEOUT_S = 180


# -- where the job keeps its state ------------------------------------------------------------


@dataclass(frozen=True)
class StreamPaths:
    root: Path

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def savepoints(self) -> Path:
        return self.root / "savepoints"

    @property
    def progress(self) -> Path:
        return self.root / "progress"

    def newest_checkpoint_id(self) -> int:
        """The id of the newest completed checkpoint (0 before the first)."""
        return max(
            (
                int(p.parent.name.removeprefix("chk-"))
                for p in self.checkpoints.glob("*/chk-*/_metadata")
            ),
            default=0,
        )

    def latest_restore_point(self) -> Path | None:
        """The newest completed checkpoint or savepoint (a folder with ``_metadata``)."""
        candidates = [
            *self.checkpoints.glob("*/chk-*/_metadata"),
            *self.savepoints.glob("savepoint-*/_metadata"),
        ]
        if not candidates:
            return None
        return max(candidates, key=lambda p: p.stat().st_mtime_ns).parent


def stream_paths(lake: LakeConfig, stream: StreamConfig) -> StreamPaths:
    return StreamPaths(stream.state_dir or lake.root / "stream")


def _write_json_atomic(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# -- Arrow → Flink SQL types -----------------------------------------------------------------


def _sql_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "STRING"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP_LTZ(6)" if arrow_type.tz else "TIMESTAMP(6)"
    if pa.types.is_int64(arrow_type):
        return "BIGINT"
    if pa.types.is_int32(arrow_type):
        return "INT"
    if pa.types.is_floating(arrow_type):
        return "DOUBLE"
    if pa.types.is_boolean(arrow_type):
        return "BOOLEAN"
    if pa.types.is_binary(arrow_type):
        return "BYTES"
    raise ConfigError(f"stream job: no Flink type for Arrow {arrow_type}")


def _flink_row_type(schema: pa.Schema) -> Any:
    """The Python map's result type. Timestamps cross the Arrow boundary as naive UTC
    (``TIMESTAMP``) and become ``TIMESTAMP_LTZ`` in SQL (session zone UTC)."""
    from pyflink.table import DataTypes

    def convert(arrow_type: pa.DataType) -> Any:
        sql = _sql_type(arrow_type)
        return {
            "STRING": DataTypes.STRING(),
            "TIMESTAMP_LTZ(6)": DataTypes.TIMESTAMP(6),
            "TIMESTAMP(6)": DataTypes.TIMESTAMP(6),
            "BIGINT": DataTypes.BIGINT(),
            "INT": DataTypes.INT(),
            "DOUBLE": DataTypes.DOUBLE(),
            "BOOLEAN": DataTypes.BOOLEAN(),
            "BYTES": DataTypes.BYTES(),
        }[sql]

    return DataTypes.ROW([DataTypes.FIELD(f.name, convert(f.type)) for f in schema])


def _select(schema: pa.Schema, names: list[str]) -> str:
    """SELECT list that restores TIMESTAMP_LTZ for the columns that were naive in the map."""
    parts = []
    for name in names:
        field_type = schema.field(name).type
        # Rows are quarantined when the chain sees them, which is when they were ingested.
        source = "_ingested_at" if name == "_quarantined_at" else name
        if pa.types.is_timestamp(field_type) and field_type.tz:
            parts.append(f"CAST(`{source}` AS TIMESTAMP_LTZ(6)) AS `{name}`")
        else:
            parts.append(f"`{name}`")
    return ", ".join(parts)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- the Python operators ------------------------------------------------------------------------


class _ProcessEvents:
    """The vectorized map: a pandas batch of source events → tagged rows.

    Built on the worker (rule packs compile there). It also notes, per Kafka partition, the
    highest offset it has processed: ``--once`` stops the job once that reaches the end
    offsets seen at start (a progress signal only; exactly-once comes from checkpoints).
    """

    def __init__(self, processor_factory: Callable[[], EventBatchProcessor], progress_dir: Path):
        self.processor_factory = processor_factory
        self.progress_dir = progress_dir
        self.processor: EventBatchProcessor | None = None
        self.offsets: dict[str, int] = {}

    def __call__(self, *columns: Any) -> Any:
        if self.processor is None:
            self.processor = self.processor_factory()
        # One DataFrame when the planner hands the row whole; one argument per column when it
        # has expanded the row, with the constant columns (source, entity, format of a Kafka
        # topic) folded into plain scalars.
        if len(columns) == 1:
            table = pa.Table.from_pandas(columns[0], preserve_index=False)
        else:
            rows = next(
                len(c) for c in columns if hasattr(c, "__len__") and not isinstance(c, str | bytes)
            )
            table = pa.Table.from_arrays(
                [
                    pa.Array.from_pandas(c) if hasattr(c, "to_numpy") else pa.array([c] * rows)
                    for c in columns
                ],
                names=SOURCE_SCHEMA.names,
            )
        tagged = self.processor.process(table)
        self._note_offsets(table)
        for index, column in enumerate(tagged.columns):
            if pa.types.is_timestamp(column.type) and column.type.tz:
                tagged = tagged.set_column(
                    index, tagged.field(index).name, column.cast(pa.timestamp("us"))
                )
        return tagged.to_pandas(timestamp_as_object=False, date_as_object=False)

    def _note_offsets(self, table: pa.Table) -> None:
        changed = False
        for key in table["source_key"].to_pylist():
            if not key.startswith("kafka:"):
                continue
            _, topic, partition, offset = key.rsplit(":", 3)
            name = f"{topic}:{partition}"
            if int(offset) > self.offsets.get(name, -1):
                self.offsets[name] = int(offset)
                changed = True
        if changed:
            _write_json_atomic(self.progress_dir / f"kafka-{os.getpid()}.json", self.offsets)


def _tailer_function(
    source: str, config: LandingSourceConfig, stream: StreamConfig, progress_dir: Path
) -> Any:
    """A keyed process function that polls the folder on every tick; its cursors are Flink
    keyed state, so they are part of every checkpoint."""
    from pyflink.common import Row, Types
    from pyflink.datastream import KeyedProcessFunction, RuntimeContext
    from pyflink.datastream.state import ValueStateDescriptor

    class TailFolder(KeyedProcessFunction):  # type: ignore[misc]
        def open(self, runtime_context: RuntimeContext) -> None:
            self.cursors = runtime_context.get_state(
                ValueStateDescriptor("landing-cursors", Types.STRING())
            )
            self.tailer = LandingTailer(config, stream.formats)

        def process_element(self, value: Any, ctx: KeyedProcessFunction.Context) -> Iterator[Row]:
            events, cursors = self.tailer.poll(cursors_from_json(self.cursors.value()))
            self.cursors.update(cursors_to_json(cursors))
            for event in events:
                yield Row(
                    event.payload,
                    source,
                    event.entity,
                    event.format,
                    event.source_key,
                    event.origin,
                )
            if not events:
                _write_json_atomic(
                    progress_dir / f"landing-{source}.json", {"idle_at": time.time()}
                )

    return TailFolder()


# -- the job ------------------------------------------------------------------------------------


@dataclass
class StreamReport:
    """A stream run: its counts (the sum of its checkpoints'), rows per table, the followed
    checkpoints and what the knowledge base received."""

    run_id: str
    restored_from: str | None
    seconds: float = 0.0
    stages: list[StageCounts] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    checkpoints: list[CheckpointSummary] = field(default_factory=list)
    knowledge_base: dict[str, LoadReport] = field(default_factory=dict)


class StreamJob:
    """Builds the Flink job for one ``StreamConfig`` and drives it."""

    def __init__(
        self,
        lake_config: LakeConfig,
        stream: StreamConfig,
        chain_factory: Callable[[str], Chain],
        run_id: str,
    ):
        self.lake = Lake(lake_config)
        self.stream = stream
        self.run_id = run_id
        self.paths = stream_paths(lake_config, stream)
        self.chain_factory = chain_factory
        self._check_formats()
        self.entities = sorted(
            {entry.entity for source in stream.sources.values() for entry in _entries(source)}
        )
        # Built here first: a bad rule pack or policy fails before a JVM starts.
        self.chains = {entity: chain_factory(entity) for entity in self.entities}
        self.schema = tagged_schema(self.chains.values())
        self.stage_names = list(
            dict.fromkeys(name for chain in self.chains.values() for name in chain.stage_names)
        )

    def _check_formats(self) -> None:
        for name, source in self.stream.sources.items():
            for entry in _entries(source):
                try:
                    resolve_format(entry.format, self.stream.formats)
                except KeyError as exc:
                    raise ConfigError(f"stream.sources.{name}: {exc.args[0]}") from None

    def processor(self) -> Callable[[], EventBatchProcessor]:
        """What builds the processor on a worker; it holds only what the processor needs
        (not the job, whose lake handle does not pickle)."""
        return partial(
            EventBatchProcessor,
            self.chain_factory,
            self.entities,
            self.stream.formats,
            run_id=self.run_id,
            max_event_bytes=self.stream.max_event_bytes,
            parse_timeout_s=self.stream.parse_timeout_s,
        )

    # -- tables -----------------------------------------------------------------------------

    def table(self, namespace: str, name: str) -> str:
        return f"`{self.lake.catalog_name}`.`{namespace}`.`{name}`"

    def outputs(self) -> dict[str, tuple[str, list[str], str]]:
        """Every sink: ``namespace.name`` → (namespace, its columns, its WHERE on the tagged
        rows)."""
        event_columns = [f.name for f in (*EVENT_FIELDS, *LINEAGE_FIELDS)]
        outputs: dict[str, tuple[str, list[str], str]] = {}
        for source_name, source in self.stream.sources.items():
            for entity in sorted({e.entity for e in _entries(source)}):
                where = (
                    f"_source = {_sql_literal(source_name)} AND _entity = {_sql_literal(entity)}"
                )
                outputs[raw_table_name(source_name, entity)] = (
                    "raw",
                    event_columns,
                    f"({where}) AND (_stage IS NULL OR _stage <> '{INGEST_STAGE}')",
                )
                outputs[f"clean.{entity}"] = (
                    "clean",
                    [
                        n
                        for n in entity_schema(self.chains[entity]).names
                        if n not in ("_outcome", *_QUARANTINE_COLUMNS, "record")
                    ],
                    f"_outcome = 'keep' AND _entity = {_sql_literal(entity)}",
                )
        quarantine_columns = [f.name for f in LINEAGE_FIELDS] + [
            *_QUARANTINE_COLUMNS,
            "_quarantined_at",
            "record",
        ]
        for stage in (INGEST_STAGE, *self.stage_names):
            outputs[f"quarantine.{stage}"] = (
                "quarantine",
                quarantine_columns,
                f"_outcome = 'quarantine' AND _stage = {_sql_literal(stage)}",
            )
        # Rows a rule dropped, by key and rule only: what the per-checkpoint accounting
        # counts them from (pipelines/stream_checkpoints.py).
        outputs[DROPS_TABLE] = (
            DROPS_TABLE.split(".", 1)[0],
            [f.name for f in LINEAGE_FIELDS] + list(_QUARANTINE_COLUMNS),
            "_outcome = 'drop'",
        )
        return outputs

    def sinks(self) -> StreamTables:
        """The sinks by role, for the checkpoint follower."""
        raw: dict[str, list[str]] = {}
        for source_name, source in self.stream.sources.items():
            for entity in sorted({e.entity for e in _entries(source)}):
                raw.setdefault(entity, []).append(raw_table_name(source_name, entity))
        return StreamTables(
            raw=raw,
            clean={entity: f"clean.{entity}" for entity in self.entities},
            quarantine={s: f"quarantine.{s}" for s in (INGEST_STAGE, *self.stage_names)},
            stage_names={e: self.chains[e].stage_names for e in self.entities},
            drops=DROPS_TABLE,
        )

    def _create_tables(self, t_env: StreamTableEnvironment) -> list[str]:
        """Create the sinks that do not exist; add to those that do the columns they lack.
        Returns one message per column added, for the run's warnings."""
        schema = self.schema.append(pa.field("_quarantined_at", pa.timestamp("us", tz="UTC")))
        # Before Flink reads any table: its catalog caches what it loaded.
        added = self._add_missing_columns(schema)
        props = ", ".join(f"'{k}'='{v}'" for k, v in _TABLE_PROPERTIES.items())
        for namespace in sorted({spec[0] for spec in self.outputs().values()}):
            t_env.execute_sql(
                f"CREATE DATABASE IF NOT EXISTS `{self.lake.catalog_name}`.`{namespace}`"
            )
        for qualified, (namespace, columns, _) in self.outputs().items():
            name = qualified.split(".", 1)[1]
            column_sql = ", ".join(f"`{c}` {_sql_type(schema.field(c).type)}" for c in columns)
            partition = " PARTITIONED BY (`_entity`)" if namespace == "quarantine" else ""
            t_env.execute_sql(
                f"CREATE TABLE IF NOT EXISTS {self.table(namespace, name)} ({column_sql})"
                f"{partition} WITH ({props})"
            )
        return added

    def _add_missing_columns(self, schema: pa.Schema) -> list[str]:
        """Add to each existing sink the columns this job writes that it lacks, as nullable
        columns (a rule pack's new extract rule adds one to clean): the INSERTs name every
        column, so an old table would fail the job. Rows written before read null there."""
        existing = set(self.lake.tables())
        added = []
        for qualified, (_, columns, _) in self.outputs().items():
            if qualified not in existing:
                continue
            table = self.lake.table(qualified)
            present = {f.name for f in table.schema().fields}
            missing = [schema.field(c) for c in columns if c not in present]
            if not missing:
                continue
            with table.update_schema() as update:
                update.union_by_name(pa.schema(missing))
            added.extend(new_column_warning(qualified, f.name) for f in missing)
        return added

    # -- sources ----------------------------------------------------------------------------

    def _kafka_table(
        self, t_env: StreamTableEnvironment, name: str, source: KafkaSourceConfig
    ) -> Table:
        tables = []
        for index, topic in enumerate(source.topics):
            view = f"steward_kafka_{name}_{index}"
            options = {
                "connector": "kafka",
                "topic": topic.topic,
                "properties.bootstrap.servers": source.bootstrap_servers,
                "properties.group.id": source.group_id,
                "scan.startup.mode": f"{source.starting_offsets}-offset",
                "format": "raw",
                **{f"properties.{k}": v for k, v in source.properties.items()},
            }
            with_clause = ", ".join(
                f"{_sql_literal(k)}={_sql_literal(v)}" for k, v in options.items()
            )
            t_env.execute_sql(
                f"CREATE TEMPORARY TABLE {view} (payload BYTES,"
                " `topic` STRING METADATA VIRTUAL, `partition` INT METADATA VIRTUAL,"
                f" `offset` BIGINT METADATA VIRTUAL) WITH ({with_clause})"
            )
            tables.append(
                t_env.sql_query(
                    f"SELECT payload, {_sql_literal(name)} AS source,"
                    f" {_sql_literal(topic.entity)} AS entity,"
                    f" {_sql_literal(topic.format)} AS format,"
                    " CONCAT('kafka:', `topic`, ':', CAST(`partition` AS STRING), ':',"
                    " CAST(`offset` AS STRING)) AS source_key,"
                    " CONCAT(`topic`, '/', CAST(`partition` AS STRING), '@',"
                    f" CAST(`offset` AS STRING)) AS origin FROM {view}"
                )
            )
        return _union(tables)

    def _landing_table(
        self, t_env: StreamTableEnvironment, name: str, source: LandingSourceConfig
    ) -> Table:
        from pyflink.common import Types
        from pyflink.table import DataTypes, Schema

        ticks = f"steward_ticks_{name}"
        rate = max(1, round(1000 / self.stream.poll_interval_ms))
        t_env.execute_sql(
            f"CREATE TEMPORARY TABLE {ticks} (n INT) WITH ('connector'='datagen',"
            f" 'rows-per-second'='{rate}', 'fields.n.min'='0', 'fields.n.max'='0')"
        )
        row_type = Types.ROW_NAMED(
            SOURCE_SCHEMA.names,
            [Types.PRIMITIVE_ARRAY(Types.BYTE()), *[Types.STRING()] * (len(SOURCE_SCHEMA) - 1)],
        )
        stream = (
            t_env.to_data_stream(t_env.from_path(ticks))
            .key_by(lambda _: name, key_type=Types.STRING())
            .process(
                _tailer_function(name, source, self.stream, self.paths.progress),
                output_type=row_type,
            )
            .uid(f"steward-landing-{name}")
            .name(f"landing {name}")
            .set_parallelism(1)
        )
        schema = Schema.new_builder()
        for field_ in SOURCE_SCHEMA:
            schema = schema.column(
                field_.name, DataTypes.BYTES() if field_.name == "payload" else DataTypes.STRING()
            )
        return t_env.from_data_stream(stream, schema.build())

    # -- build and run ----------------------------------------------------------------------

    def build(self, t_env: StreamTableEnvironment) -> list[str]:
        """Declare sources, the chain and every sink, attached to the execution env. Returns
        the columns added to existing sinks, as messages for the run's warnings."""
        from pyflink.table.udf import udf

        from pipelines.flink_env import register_catalog

        register_catalog(t_env, self.lake)
        added = self._create_tables(t_env)
        sources = [
            self._kafka_table(t_env, name, source)
            if isinstance(source, KafkaSourceConfig)
            else self._landing_table(t_env, name, source)
            for name, source in self.stream.sources.items()
        ]
        process = udf(
            _ProcessEvents(self.processor(), self.paths.progress),
            result_type=_flink_row_type(self.schema),
            func_type="pandas",
        )
        tagged = _union(sources).map(process)
        t_env.create_temporary_view("steward_tagged", tagged)
        schema = self.schema.append(pa.field("_quarantined_at", pa.timestamp("us", tz="UTC")))
        statements = t_env.create_statement_set()
        for qualified, (namespace, columns, where) in self.outputs().items():
            name = qualified.split(".", 1)[1]
            statements.add_insert_sql(
                f"INSERT INTO {self.table(namespace, name)} SELECT {_select(schema, columns)}"
                f" FROM steward_tagged WHERE {where}"
            )
        statements.attach_as_datastream()
        return added


def _entries(source: KafkaSourceConfig | LandingSourceConfig) -> list[Any]:
    return list(source.topics if isinstance(source, KafkaSourceConfig) else source.files)


def _union(tables: list[Table]) -> Table:
    result = tables[0]
    for table in tables[1:]:
        result = result.union_all(table)
    return result


# -- the driver -----------------------------------------------------------------------------------


class _CatchUp:
    """Decides when a ``--once`` run has processed everything that was there at its start."""

    def __init__(self, job: StreamJob, started_at: float):
        self.job = job
        self.started_at = started_at
        self.kafka_targets: dict[str, int] = {}
        self._last_change = time.monotonic()
        self._last_seen: object = None
        # Offsets noted by an earlier run may be ahead of its last checkpoint (it crashed after
        # reading them): only what this run processes counts.
        for stale in job.paths.progress.glob("kafka-*.json"):
            stale.unlink()
        for source in job.stream.sources.values():
            if isinstance(source, KafkaSourceConfig):
                from ingest.kafka import KafkaClient

                client = KafkaClient(source.bootstrap_servers, source.properties)
                try:
                    ends = client.end_offsets([t.topic for t in source.topics])
                except Exception as exc:
                    raise SourceError(
                        f"Kafka {source.bootstrap_servers}: cannot read end offsets: {exc}",
                        transient=True,
                    ) from None
                self.kafka_targets.update({f"{t}:{p}": end for (t, p), end in ends.items()})

    def _kafka_seen(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        for path in self.job.paths.progress.glob("kafka-*.json"):
            for name, offset in (_read_json(path) or {}).items():
                seen[name] = max(seen.get(name, -1), int(offset))
        return seen

    def done(self, job_id: str) -> bool:
        seen = self._kafka_seen()
        kafka_done = all(
            end == 0 or seen.get(name, -1) >= end - 1 for name, end in self.kafka_targets.items()
        )
        landing_done = all(
            (_read_json(self.job.paths.progress / f"landing-{name}.json") or {}).get("idle_at", 0)
            > self.started_at
            for name, source in self.job.stream.sources.items()
            if isinstance(source, LandingSourceConfig)
        )
        if kafka_done and landing_done:
            return True
        # Transaction markers occupy offsets no record is read at: when nothing has moved
        # for a while, the sources are as caught up as they will get. The clock starts at
        # the run's first completed checkpoint: before it, a slow start looks like idleness.
        running = any((self.job.paths.checkpoints / job_id).glob("chk-*/_metadata"))
        if seen != self._last_seen or not running:
            self._last_seen = seen
            self._last_change = time.monotonic()
        return landing_done and (
            time.monotonic() - self._last_change > self.job.stream.once_idle_timeout_s
        )


def _stop_with_savepoint(client: JobClient, directory: Path) -> str:
    """Stop the job with a savepoint (Iceberg commits what it holds); returns its path.

    PyFlink 2.1's ``JobClient.stop_with_savepoint`` still calls the two-argument Java method
    that Flink 2 removed, so the Java client is called with the savepoint format itself.
    """
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    deadline = time.monotonic() + _STOP_TIMEOUT_S
    while True:
        future = client._j_job_client.stopWithSavepoint(
            False,
            directory.resolve().as_uri(),
            jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL,
        )
        try:
            return str(future.get(_STOP_TIMEOUT_S, jvm.java.util.concurrent.TimeUnit.SECONDS))
        except Exception as exc:
            # A savepoint needs every task running; right after a (re)start some may still
            # be deploying. Anything else is a real failure.
            if "Not all required tasks are currently running" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise LakeError(
                    "the stream job did not reach a state where it could be stopped with a"
                    " savepoint",
                    transient=True,
                ) from None
            time.sleep(1)


def _job_failed(client: JobClient) -> str | None:
    status = str(client.get_job_status().result())
    return status if status in ("FAILED", "CANCELED") else None


def run_stream(
    lake_config: LakeConfig,
    stream: StreamConfig,
    chain_factory: Callable[[str], Chain],
    config_digest: str,
    *,
    once: bool,
    should_stop: Callable[[], bool] | None = None,
    run_id: str | None = None,
    quality: QualityConfig | None = None,
    kb: KnowledgeBaseConfig | None = None,
    embedder: Embedder | None = None,
) -> StreamReport:
    """Run the stream job under a ledger entry.

    ``once``: stop with a savepoint when caught up. Otherwise run until ``should_stop()`` says
    so (or Ctrl-C), then stop with a savepoint. Each start resumes from the newest retained
    checkpoint or savepoint. While the job runs, and once more after it stopped, every
    committed checkpoint is followed (``pipelines.stream_checkpoints``): counted into the
    ledger, checked by ``quality``'s contracts (default: the shipped ones) and, with ``kb``,
    loaded into the knowledge-base datasets that read a stream clean table (``embedder``
    defaults to ``kb.embedding``'s model, loaded when the first rows arrive). The run's
    per-stage counts are the sum of its checkpoints'.
    """
    from pipelines.contracts import QualityConfig
    from pipelines.flink_env import create_environments, flink_configuration
    from pipelines.quality import QualityGate

    run_id = run_id or new_run_id()
    job = StreamJob(lake_config, stream, chain_factory, run_id)
    # Contracts load before a JVM starts: a broken one fails fast.
    gate = QualityGate(quality or QualityConfig(), lake_config.root)
    job.lake.prepare()
    restore = job.paths.latest_restore_point()
    report = StreamReport(run_id, str(restore) if restore else None)
    started = time.perf_counter()
    ledger = RunLedger(lake_config.ledger)
    with ledger.run("stream", config_digest, run_id=run_id) as run:
        conf = flink_configuration(
            parallelism=stream.parallelism,
            checkpoint_interval_ms=stream.checkpoint_interval_ms,
            checkpoint_dir=job.paths.checkpoints,
            restore_from=restore,
            extra={"execution.state-recovery.ignore-unclaimed-state": "true"},
        )
        env, t_env = create_environments(conf)
        for message in job.build(t_env):
            run.record_warning(message)
        feed = _knowledge_base_feed(job, kb, embedder)
        follower = CheckpointFollower(
            job.lake,
            job.sinks(),
            run,
            gate=gate,
            knowledge_base=feed,
            completed=job.paths.newest_checkpoint_id,
        )
        try:
            catch_up = _CatchUp(job, time.time()) if once else None
            client = env.execute_async(f"steward-stream {run_id}")
            logger.info("stream job %s submitted (restored from %s)", run_id, restore)
            try:
                problem = _drive(
                    client,
                    catch_up,
                    should_stop,
                    follower.poll,
                    max(stream.checkpoint_interval_ms / 1000, _POLL_S),
                )
                logger.info("stream job %s: stopping with a savepoint", run_id)
                savepoint = _stop_with_savepoint(client, job.paths.savepoints)
                logger.info("stream job %s: stopped, savepoint %s", run_id, savepoint)
            except BaseException:
                if _job_failed(client) is None:
                    client.cancel()
                raise
            if problem is not None:
                raise problem
            follower.poll(final=True)
        finally:
            if feed is not None:
                feed.close()
        report.seconds = time.perf_counter() - started
        report.stages = follower.totals()
        for counts in report.stages:
            run.record_stage(counts)
        report.tables = follower.table_rows
        report.checkpoints = follower.checkpoints
        report.knowledge_base = feed.reports if feed is not None else {}
    return report


def _knowledge_base_feed(
    job: StreamJob, kb: KnowledgeBaseConfig | None, embedder: Embedder | None
) -> KnowledgeBaseFeed | None:
    if kb is None:
        return None

    def load_model() -> Embedder:
        from index.embed import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(kb.embedding)

    feed = KnowledgeBaseFeed(kb, job.sinks().clean.values(), embedder or load_model)
    if not feed.datasets:
        logger.warning("kb: no dataset reads a stream clean table; the stream loads none")
        return None
    # A dataset naming a column the clean table lacks fails here, before the job starts.
    for table, datasets in feed.datasets.items():
        for dataset in datasets:
            feed.columns(dataset, job.lake.table(table))
    return feed


def _drive(
    client: JobClient,
    catch_up: _CatchUp | None,
    should_stop: Callable[[], bool] | None,
    follow: Callable[[], object] | None = None,
    follow_every_s: float = 1.0,
) -> StewardError | None:
    """Wait until the job is caught up (``--once``) or told to stop, following its commits
    meanwhile. A follower's error (a failed gate, an imbalance) is returned, not raised: the
    job itself is healthy and is stopped with a savepoint before the error is reported."""
    next_follow = time.monotonic() + follow_every_s
    while True:
        time.sleep(_POLL_S)
        failed = _job_failed(client)
        if failed is not None:
            detail = ""
            try:
                client.get_job_execution_result().result()
            except Exception as exc:
                detail = ": " + next(iter(str(exc).strip().splitlines()), "")
            raise SourceError(f"the stream job stopped ({failed}){detail}", transient=True)
        if follow is not None and time.monotonic() >= next_follow:
            try:
                follow()
            except StewardError as exc:
                return exc
            next_follow = time.monotonic() + follow_every_s
        if catch_up is not None and catch_up.done(str(client.get_job_id())):
            return None
        if should_stop is not None and should_stop():
            return None
