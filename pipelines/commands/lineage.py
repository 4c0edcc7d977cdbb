"""``steward runs lineage``: where a curated row or a knowledge-base point came from
(pyiceberg and the vector store, no JVM)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.commands.common import handles_errors, lake_config, out, print_json

if TYPE_CHECKING:
    from pipelines.lake import Lake
    from pipelines.ledger import RunLedger
    from pipelines.lineage import PointTrace, Trace
    from privacy.policy import PrivacyPolicy


@handles_errors
def lineage_command(target: str, config: Path, as_json: bool) -> None:
    """Trace ``<dataset>:<source key>`` (or a knowledge-base point id) to its source system,
    entity, key, ingest run, raw versions, rule-pack and privacy-policy versions and, for
    synthetic rows, its seeds."""
    from pipelines.lake import Lake
    from pipelines.ledger import RunLedger
    from pipelines.lineage import is_point_id, parse_target, trace

    lake_settings = lake_config(config)
    ledger = RunLedger(lake_settings.ledger) if lake_settings.ledger.exists() else None
    lake = Lake(lake_settings)
    policies = _policies(config)
    if is_point_id(target):
        point = _trace_point(config, lake, target, ledger, policies)
        if as_json:
            print_json(point.as_json())
            return
        _print_point(point)
        for t in point.rows:
            _print_trace(t)
        return
    dataset, key = parse_target(target)
    traces = trace(lake, dataset, key, ledger=ledger, policies=policies)
    if as_json:
        print_json([t.as_json() for t in traces])
        return
    for t in traces:
        _print_trace(t)


def _policies(config: Path) -> dict[str, PrivacyPolicy]:
    """The privacy policies the pipeline config names, by entity (``DEFAULT_POLICY``: the
    default); none when the config has no privacy section."""
    from pipelines.config import load_config
    from pipelines.lineage import DEFAULT_POLICY
    from privacy.policy import load_policy

    if not config.exists():
        return {}
    privacy = load_config(config).privacy
    if privacy is None:
        return {}
    policies = {entity: load_policy(path) for entity, path in privacy.policies.items()}
    if privacy.default is not None:
        policies[DEFAULT_POLICY] = load_policy(privacy.default)
    return policies


def _trace_point(
    config: Path,
    lake: Lake,
    point_id: str,
    ledger: RunLedger | None,
    policies: dict[str, PrivacyPolicy],
) -> PointTrace:
    from index.stores import open_store
    from pipelines.commands.kb import load_kb_config
    from pipelines.lineage import trace_point

    _, kb = load_kb_config(config)
    store = open_store(kb)
    try:
        return trace_point(store, lake, point_id, ledger=ledger, policies=policies)
    finally:
        store.close()


def _print_point(p: PointTrace) -> None:
    out.print(f"[bold]knowledge-base point[/bold] {p.point_id}", highlight=False)
    lines = [
        ("dataset", f"{p.dataset} / field {p.field}"),
        (
            "chunk",
            f"{p.chunk_index + 1} of {p.chunk_count}, characters {p.char_start}-{p.char_end}",
        ),
        ("model", p.embedding_model),
        ("access", ", ".join(f"{k}={v}" for k, v in sorted(p.access.items())) or "-"),
        (
            "source",
            f"{p.lineage.get('_source')} / entity {p.lineage.get('_entity')}"
            f" / key {p.lineage.get('_source_key')}",
        ),
        ("ingest run", p.lineage.get("_run_id")),
        ("rule packs", p.lineage.get("_rules_version")),
        ("privacy policy", p.lineage.get("_privacy_policy_version")),
    ]
    _print_lines(lines)
    if not p.rows:
        out.print(f"  (no row with this key in curated.{p.dataset} now)", highlight=False)


def _print_trace(t: Trace) -> None:
    out.print(
        f"[bold]curated.{t.dataset}[/bold] key {t.source_key} (snapshot {t.curated_snapshot_id})",
        highlight=False,
    )
    lines = [
        ("source", f"{t.source} / entity {t.entity} / key {t.source_key}"),
        (
            "ingest run",
            f"{t.ingest_run} at {t.ingested_at}" + (f" ({t.run['status']})" if t.run else ""),
        ),
        ("content hash", t.content_hash),
        ("rule packs", t.rules_version),
        ("privacy policy", t.privacy_policy_version),
        ("synthetic", f"yes, seeds {', '.join(t.seed_keys) or '-'}" if t.synthetic else "no"),
    ]
    _print_lines(lines)
    if t.treatment is not None:
        out.print("  privacy treatment:", highlight=False)
        for what, action in t.treatment.items():
            out.print(f"    {what:<22} {action}", highlight=False)
    out.print(f"  raw versions in {t.raw_table or '-'}:", highlight=False)
    for v in t.raw_versions:
        out.print(
            f"    {v.ingested_at}  run {v.run_id}  snapshot {v.snapshot_id}"
            f"  hash {(v.content_hash or '')[:12]}",
            highlight=False,
        )


def _print_lines(lines: list[tuple[str, object]]) -> None:
    for label, value in lines:
        out.print(f"  {label:<15} {value if value is not None else '-'}", highlight=False)
