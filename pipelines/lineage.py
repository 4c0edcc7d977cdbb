"""Lineage for audit: from a curated row back to its source, and OpenLineage run events.

``trace(lake, dataset, source_key)`` reads the lake with pyiceberg only (no JVM): the curated
row's lineage columns, every version of that key in ``raw.<source>_<entity>`` with the raw
snapshot that added it, and the ingest run from the ledger. A synthetic row lists the source
keys of its seeds (``_seed_keys``); each can be traced the same way.

``run_events`` turns a ledger run into OpenLineage ``RunEvent``s (START and COMPLETE/FAIL, the
committed tables as outputs) and ``write_events`` appends them as JSON lines, which is what
OpenLineage's file transport writes; Marquez or DataHub can import that file. They are built
from the published OpenLineage JSON schema directly: a few dicts do not justify a dependency.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ConfigError, LakeError
from pipelines.lake import Lake, raw_table_name
from pipelines.ledger import RunLedger

if TYPE_CHECKING:
    from index.stores import VectorStore
    from privacy.policy import PrivacyPolicy

OPENLINEAGE_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
PRODUCER = "https://github.com/steward/steward/pipelines/lineage.py"
DEFAULT_POLICY = "*"  # the key of the policy for entities without their own
# Steward run ids are not UUIDs; OpenLineage wants one, the same for every event of a run.
_RUN_NAMESPACE = uuid.UUID("5f0c7a8e-3f7e-5d55-9a43-6b1d3c2b8f10")


@dataclass(frozen=True)
class RawVersion:
    """One version of the source row as raw kept it."""

    table: str
    run_id: str | None
    ingested_at: str | None
    content_hash: str | None
    snapshot_id: int | None  # the raw commit that added it (by the run id in its summary)


@dataclass(frozen=True)
class Trace:
    """Where one curated row came from."""

    dataset: str
    source_key: str
    source: str | None
    entity: str | None
    ingest_run: str | None
    ingested_at: str | None
    content_hash: str | None
    rules_version: str | None
    privacy_policy_version: str | None
    synthetic: bool
    seed_keys: list[str]
    curated_snapshot_id: int | None
    raw_table: str | None
    raw_versions: list[RawVersion] = field(default_factory=list)
    run: dict[str, Any] | None = None  # the ledger's row for the ingest run
    # How the privacy policy the row was treated under handles each field and PII type
    # (None: no policy known for the entity, or the policy file has changed since).
    treatment: dict[str, str] | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_target(target: str) -> tuple[str, str]:
    """``<dataset>:<source key>`` (or ``<dataset>/<source key>``) as (dataset, key); the
    first separator splits, so a key may contain either."""
    cut = min((i for i in (target.find(":"), target.find("/")) if i > 0), default=-1)
    if 0 < cut < len(target) - 1:
        return target[:cut], target[cut + 1 :]
    raise ConfigError(f"{target!r}: give a curated row as <dataset>:<source key>, e.g. orders:1042")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _snapshots_by_run(lake: Lake, table: str) -> dict[str, int]:
    return {
        snap["summary"]["steward.run-id"]: snap["snapshot_id"]
        for snap in lake.snapshots(table)
        if "steward.run-id" in snap["summary"]
    }


def _raw_versions(lake: Lake, table: str, source_key: str) -> list[RawVersion]:
    from pyiceberg.expressions import EqualTo

    rows = (
        lake.table(table)
        .scan(
            row_filter=EqualTo("_source_key", source_key),
            selected_fields=("_run_id", "_ingested_at", "_content_hash"),
        )
        .to_arrow()
        .to_pylist()
    )
    by_run = _snapshots_by_run(lake, table)
    versions = [
        RawVersion(
            table=table,
            run_id=row["_run_id"],
            ingested_at=_text(row["_ingested_at"]),
            content_hash=row["_content_hash"],
            snapshot_id=by_run.get(row["_run_id"]),
        )
        for row in rows
    ]
    return sorted(versions, key=lambda v: (v.ingested_at or "", v.run_id or ""))


def describe_treatment(policy: PrivacyPolicy) -> dict[str, str]:
    """What a policy does, one line per declared field (``field:<name>``), PII type found in
    free text (``type:<name>``) and the default for other types."""
    described = {
        f"field:{name}": _action(policy.field_treatment(name)) for name in sorted(policy.fields)
    }
    described.update({f"type:{name}": _action(t) for name, t in sorted(policy.types.items())})
    described["type:*"] = _action(policy.default_action)
    return described


def _action(treatment: Any) -> str:
    details = treatment.model_dump(exclude={"action", "type"}, exclude_none=True)
    if not details:
        return str(treatment.action)
    return f"{treatment.action} ({', '.join(f'{k}={v}' for k, v in sorted(details.items()))})"


def trace(
    lake: Lake,
    dataset: str,
    source_key: str,
    *,
    snapshot_id: int | None = None,
    ledger: RunLedger | None = None,
    policies: Mapping[str, PrivacyPolicy] | None = None,
) -> list[Trace]:
    """Every curated row of ``dataset`` with ``_source_key == source_key`` (one per source
    that uses the key, and synthetic rows), traced back to raw. ``policies`` (by entity) add
    the treatment when the row's ``_privacy_policy_version`` is the policy's (``DEFAULT_POLICY``
    for entities without their own). Raises
    ``LakeError`` when there is no such row."""
    from pyiceberg.expressions import EqualTo

    curated_name = f"curated.{dataset}"
    curated = lake.table(curated_name)
    snapshot = (
        curated.snapshot_by_id(snapshot_id)
        if snapshot_id is not None
        else curated.current_snapshot()
    )
    if snapshot is None:
        raise LakeError(f"{curated_name} has no snapshot {snapshot_id or '(empty table)'}")
    rows = (
        curated.scan(
            row_filter=EqualTo("_source_key", source_key), snapshot_id=snapshot.snapshot_id
        )
        .to_arrow()
        .to_pylist()
    )
    if not rows:
        raise LakeError(f"no row with _source_key {source_key!r} in {curated_name}")
    known = set(lake.tables())
    traces = []
    for row in rows:
        source, entity = row.get("_source"), row.get("_entity")
        raw_name = raw_table_name(source, entity) if source and entity else None
        versions = (
            _raw_versions(lake, raw_name, source_key)
            if raw_name is not None and raw_name in known
            else []
        )
        run_id = row.get("_run_id")
        policy = (policies or {}).get(entity or "", (policies or {}).get(DEFAULT_POLICY))
        treated = (
            describe_treatment(policy)
            if policy is not None and policy.version_tag == row.get("_privacy_policy_version")
            else None
        )
        traces.append(
            Trace(
                dataset=dataset,
                source_key=source_key,
                source=source,
                entity=entity,
                ingest_run=run_id,
                ingested_at=_text(row.get("_ingested_at")),
                content_hash=row.get("_content_hash"),
                rules_version=row.get("_rules_version"),
                privacy_policy_version=row.get("_privacy_policy_version"),
                synthetic=bool(row.get("_synthetic") or False),
                seed_keys=[str(k) for k in row.get("_seed_keys") or []],
                curated_snapshot_id=snapshot.snapshot_id,
                raw_table=raw_name if versions else None,
                raw_versions=versions,
                run=_ledger_run(ledger, run_id),
                treatment=treated,
            )
        )
    return traces


@dataclass(frozen=True)
class PointTrace:
    """Where one knowledge-base point came from: the chunk it holds, the lineage columns of
    the row it was cut from (as loaded), and that row traced back to raw."""

    point_id: str
    dataset: str
    field: str
    chunk_index: int
    chunk_count: int
    char_start: int
    char_end: int
    embedding_model: str | None
    access: dict[str, Any]
    lineage: dict[str, Any]  # the row's lineage columns as the point carries them
    rows: list[Trace]  # the row in curated.<dataset>, traced (empty when curated lacks it)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def is_point_id(target: str) -> bool:
    """Knowledge-base point ids are UUIDs (``index.points.point_id``); row targets are not."""
    try:
        uuid.UUID(target)
    except ValueError:
        return False
    return True


def trace_point(
    store: VectorStore,
    lake: Lake,
    point_id: str,
    *,
    ledger: RunLedger | None = None,
    policies: Mapping[str, PrivacyPolicy] | None = None,
) -> PointTrace:
    """Trace a knowledge-base point: its payload's metadata, then its row in curated (when
    the dataset is a curated table that still holds the key). Raises ``LakeError`` when the
    store has no such point."""
    from index.points import METADATA_KEY

    payload = store.payload(point_id)
    if payload is None:
        raise LakeError(f"no knowledge-base point {point_id}")
    metadata = payload.get(METADATA_KEY) or {}
    dataset = str(metadata.get("dataset"))
    source_key = metadata.get("_source_key")
    rows: list[Trace] = []
    if source_key is not None and f"curated.{dataset}" in set(lake.tables()):
        try:
            rows = trace(lake, dataset, str(source_key), ledger=ledger, policies=policies)
        except LakeError:
            rows = []  # deleted since the load; the point's own lineage still tells
    return PointTrace(
        point_id=point_id,
        dataset=dataset,
        field=str(metadata.get("field")),
        chunk_index=int(metadata.get("chunk_index", 0)),
        chunk_count=int(metadata.get("chunk_count", 1)),
        char_start=int(metadata.get("char_start", 0)),
        char_end=int(metadata.get("char_end", 0)),
        embedding_model=metadata.get("embedding_model"),
        access=dict(metadata.get("access") or {}),
        lineage={k: v for k, v in metadata.items() if k.startswith("_")},
        rows=rows,
    )


def _ledger_run(ledger: RunLedger | None, run_id: str | None) -> dict[str, Any] | None:
    if ledger is None or run_id is None:
        return None
    run = ledger.show_run(run_id)
    if run is None:
        return None
    return {
        k: run[k] for k in ("run_id", "kind", "status", "started_at", "finished_at", "config_hash")
    }


# -- OpenLineage -------------------------------------------------------------------------------


def _dataset(namespace: str, table: str) -> dict[str, Any]:
    return {"namespace": namespace, "name": table, "facets": {}}


def run_events(
    run: Mapping[str, Any],
    *,
    namespace: str = "steward",
    datasets_namespace: str = "iceberg://steward",
    inputs: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """OpenLineage RunEvents for one ledger run (``RunLedger.show_run``): START at its start,
    then COMPLETE or FAIL at its end (none while it runs). Outputs are the tables it committed;
    ``inputs`` name what it read (for example ``erp.public.orders``)."""
    run_uuid = str(uuid.uuid5(_RUN_NAMESPACE, str(run["run_id"])))
    job = {"namespace": namespace, "name": f"steward.{run['kind']}", "facets": {}}
    outputs = sorted({c["table_name"] for c in run.get("commits", [])})

    def event(kind: str, time: str) -> dict[str, Any]:
        return {
            "eventType": kind,
            "eventTime": time,
            "run": {
                "runId": run_uuid,
                "facets": {
                    "steward": {
                        "_producer": PRODUCER,
                        "_schemaURL": f"{PRODUCER}#StewardRunFacet",
                        "run_id": run["run_id"],
                        "config_hash": run.get("config_hash"),
                    }
                },
            },
            "job": job,
            "inputs": [_dataset(namespace, name) for name in inputs],
            "outputs": [_dataset(datasets_namespace, name) for name in outputs],
            "producer": PRODUCER,
            "schemaURL": OPENLINEAGE_SCHEMA_URL,
        }

    events = [event("START", run["started_at"])]
    if run.get("finished_at"):
        events.append(
            event("COMPLETE" if run.get("status") == "succeeded" else "FAIL", run["finished_at"])
        )
    return events


def write_events(path: Path, events: Iterable[Mapping[str, Any]]) -> int:
    """Append events as JSON lines (OpenLineage's file transport format); returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a", encoding="utf-8") as stream:
        for item in events:
            stream.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


__all__ = [
    "RawVersion",
    "Trace",
    "parse_target",
    "run_events",
    "trace",
    "write_events",
]
