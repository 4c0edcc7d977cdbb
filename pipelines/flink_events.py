"""Source events → tagged rows: parse, add lineage, run the transform chain. Pure Python.

The stream job runs ``EventBatchProcessor`` inside a Flink vectorized (Arrow) map over each
micro-batch; the batch reference (``reference_rows``) runs the very same object over a whole
folder or list of events, which is how "one transform chain, two engines" is tested.

Every input event comes out exactly once, tagged like the chain's output (``_outcome``,
``_stage``, ``_rule_id``, ``_reason``): events that cannot be parsed are tagged
``quarantine`` at stage ``ingest`` with their origin in the reason, everything else goes
through the chain. ``record`` carries the quarantined event as JSON (the batch quarantine
layout).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.logs import EVENT_FIELDS, MalformedEvent, decode, parse_event, resolve_format
from ingest.stream_config import LogFormat
from pipelines.chain import OUTCOME_FIELDS, Chain

INGEST_STAGE = "ingest"
_PREVIEW_CHARS = 4096

# What a source hands the processor: the event's bytes and where it came from.
SOURCE_SCHEMA = pa.schema(
    [
        pa.field("payload", pa.binary()),
        pa.field("source", pa.string()),
        pa.field("entity", pa.string()),
        pa.field("format", pa.string()),
        pa.field("source_key", pa.string()),
        pa.field("origin", pa.string()),
    ]
)

LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("_source", pa.string()),
    pa.field("_entity", pa.string()),
    pa.field("_source_key", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.string()),
    pa.field("_content_hash", pa.string()),
)

# A row as the chain sees it: the event's columns, then lineage (the batch layout).
EVENT_SCHEMA = pa.schema([*EVENT_FIELDS, *LINEAGE_FIELDS])
RECORD_FIELD = pa.field("record", pa.string())
# An event that could not be parsed: where it came from, lineage, why, and its text as JSON.
MALFORMED_SCHEMA = pa.schema(
    [
        pa.field("origin", pa.string()),
        *LINEAGE_FIELDS,
        *OUTCOME_FIELDS,
        RECORD_FIELD,
    ]
)


def entity_schema(chain: Chain) -> pa.Schema:
    """What one entity's chain makes of an event row: its tagged schema plus ``record``."""
    return chain.output_schema(EVENT_SCHEMA).append(RECORD_FIELD)


def tagged_schema(chains: Iterable[Chain]) -> pa.Schema:
    """The processor's output for several entities: every column any chain adds, in order
    of first appearance (an entity whose chain lacks a column has nulls there)."""
    fields: dict[str, pa.Field] = {}
    for chain in chains:
        for f in entity_schema(chain):
            fields.setdefault(f.name, f)
    outcome = [f for name, f in fields.items() if name in _TAIL]
    return pa.schema([*(f for name, f in fields.items() if name not in _TAIL), *outcome])


_TAIL = ("_outcome", "_stage", "_rule_id", "_reason", "record")


def _record_json(row: Mapping[str, Any]) -> str:
    payload = {k: v for k, v in row.items() if k in {f.name for f in EVENT_FIELDS}}
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class EventBatchProcessor:
    """Turns a batch of source events into tagged rows (``tagged_schema``)."""

    def __init__(
        self,
        chain_factory: Callable[[str], Chain],
        entities: Sequence[str],
        formats: Mapping[str, LogFormat],
        *,
        run_id: str,
        max_event_bytes: int,
        parse_timeout_s: float = 0.1,
    ):
        self.chains = {entity: chain_factory(entity) for entity in sorted(set(entities))}
        self.formats = dict(formats)
        self.run_id = run_id
        self.max_event_bytes = max_event_bytes
        self.parse_timeout_s = parse_timeout_s
        self.schema = tagged_schema(self.chains.values())

    def process(self, batch: pa.Table, ingested_at: datetime | None = None) -> pa.Table:
        """Every row of ``batch`` (``SOURCE_SCHEMA``) once, tagged."""
        events, malformed = parse_events(
            batch,
            self.formats,
            run_id=self.run_id,
            max_event_bytes=self.max_event_bytes,
            parse_timeout_s=self.parse_timeout_s,
            ingested_at=ingested_at,
        )
        parts = [_conform(malformed, self.schema)]
        for entity, chain in self.chains.items():
            rows = events.filter(pc.equal(events["_entity"], entity))
            if rows.num_rows:
                parts.append(_conform(self.run_chain(chain, rows), self.schema))
        unknown = set(pc.unique(events["_entity"]).to_pylist()) - set(self.chains)
        if unknown:
            raise ValueError(f"events of entities without a chain: {sorted(unknown)}")
        return pa.concat_tables(parts)

    @staticmethod
    def run_chain(chain: Chain, events: pa.Table) -> pa.Table:
        """One entity's event rows through its chain, rejects with their ``record``."""
        tagged = chain.run(events)
        rejected = pc.not_equal(tagged["_outcome"], "keep").to_pylist()
        records = [
            _record_json(row) if hit else None
            for row, hit in zip(
                tagged.select(EVENT_SCHEMA.names).to_pylist(), rejected, strict=True
            )
        ]
        return tagged.append_column(RECORD_FIELD, pa.array(records, pa.string()))


def parse_events(
    batch: pa.Table,
    formats: Mapping[str, LogFormat],
    *,
    run_id: str,
    max_event_bytes: int,
    parse_timeout_s: float = 0.1,
    ingested_at: datetime | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Source events (``SOURCE_SCHEMA``) → event rows with lineage (``EVENT_SCHEMA``, what the
    chain reads) and malformed events tagged for ``quarantine.ingest`` (``MALFORMED_SCHEMA``).

    The first step of ``EventBatchProcessor.process``, on its own so that any engine can run
    it (a Spark ``mapInArrow`` over the same events gives the same rows).
    """
    ingested_at = ingested_at or datetime.now(UTC)
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for source in batch.select(SOURCE_SCHEMA.names).to_pylist():
        payload: bytes = source["payload"] or b""
        lineage = {
            "_source": source["source"],
            "_entity": source["entity"],
            "_source_key": source["source_key"],
            "_ingested_at": ingested_at,
            "_run_id": run_id,
            "_content_hash": hashlib.sha256(payload).hexdigest(),
        }
        try:
            fmt = resolve_format(source["format"], formats)
            event = parse_event(decode(payload, max_event_bytes), fmt, parse_timeout_s)
        except MalformedEvent as exc:
            bad.append(_malformed(source, payload, lineage, exc))
            continue
        except KeyError as exc:
            bad.append(
                _malformed(source, payload, lineage, MalformedEvent("ingest.no_format", str(exc)))
            )
            continue
        good.append({**event.as_row(source["origin"]), **lineage})
    return (
        pa.Table.from_pylist(good, schema=EVENT_SCHEMA),
        pa.Table.from_pylist(bad, schema=MALFORMED_SCHEMA),
    )


def _malformed(
    source: Mapping[str, Any], payload: bytes, lineage: dict[str, Any], exc: MalformedEvent
) -> dict[str, Any]:
    record = {
        "origin": source["origin"],
        "format": source["format"],
        "bytes": len(payload),
        "text": payload[: _PREVIEW_CHARS * 4].decode("utf-8", errors="replace")[:_PREVIEW_CHARS],
    }
    return {
        "origin": source["origin"],
        **lineage,
        "_outcome": "quarantine",
        "_stage": INGEST_STAGE,
        "_rule_id": exc.rule_id,
        "_reason": f"{source['origin']}: {exc.reason}",
        "record": json.dumps(record, ensure_ascii=False, sort_keys=True),
    }


def _conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    columns = [
        rows[f.name].cast(f.type)
        if f.name in rows.column_names
        else pa.nulls(rows.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def source_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=SOURCE_SCHEMA)


def tallies(tagged: pa.Table) -> list[tuple[str | None, str, str | None, int]]:
    """(stage, outcome, rule_id, count) groups, the input of ``chain.stage_counts``."""
    grouped = tagged.group_by(["_stage", "_outcome", "_rule_id"], use_threads=False).aggregate(
        [("_outcome", "count")]
    )
    return [
        (row["_stage"], row["_outcome"], row["_rule_id"], row["_outcome_count"])
        for row in grouped.to_pylist()
    ]


def reference_rows(processor: EventBatchProcessor, events: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The batch reference: the same processor over all events at once."""
    return processor.process(source_table(events))


__all__ = [
    "EVENT_SCHEMA",
    "INGEST_STAGE",
    "LINEAGE_FIELDS",
    "MALFORMED_SCHEMA",
    "SOURCE_SCHEMA",
    "EventBatchProcessor",
    "entity_schema",
    "parse_events",
    "reference_rows",
    "source_table",
    "tagged_schema",
    "tallies",
]
