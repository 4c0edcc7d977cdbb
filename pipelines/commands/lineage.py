"""``steward runs lineage``: where a curated row came from (pyiceberg, no JVM)."""

from __future__ import annotations

from pathlib import Path

from pipelines.commands.common import handles_errors, lake_config, out, print_json


@handles_errors
def lineage_command(target: str, config: Path, as_json: bool) -> None:
    """Trace ``<dataset>:<source key>`` to its source system, entity, key, ingest run, raw
    versions, rule-pack and privacy-policy versions and, for synthetic rows, its seeds."""
    from pipelines.lake import Lake
    from pipelines.ledger import RunLedger
    from pipelines.lineage import parse_target, trace

    dataset, key = parse_target(target)
    lake_settings = lake_config(config)
    ledger = RunLedger(lake_settings.ledger) if lake_settings.ledger.exists() else None
    traces = trace(Lake(lake_settings), dataset, key, ledger=ledger)
    if as_json:
        print_json([t.as_json() for t in traces])
        return
    for t in traces:
        out.print(
            f"[bold]curated.{t.dataset}[/bold] key {t.source_key}"
            f" (snapshot {t.curated_snapshot_id})",
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
        for label, value in lines:
            out.print(f"  {label:<15} {value if value is not None else '-'}", highlight=False)
        out.print(f"  raw versions in {t.raw_table or '-'}:", highlight=False)
        for v in t.raw_versions:
            out.print(
                f"    {v.ingested_at}  run {v.run_id}  snapshot {v.snapshot_id}"
                f"  hash {(v.content_hash or '')[:12]}",
                highlight=False,
            )
