"""The end-of-run summary: rows per source and table, quarantine reasons, time per stage."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from pipelines.spark_job import EntityReport


def batch_summary_json(run_id: str, reports: list[EntityReport], seconds: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "seconds": round(seconds, 2),
        "entities": [
            {**report.__dict__, "seconds": {k: round(v, 2) for k, v in report.seconds.items()}}
            for report in reports
        ],
    }


def print_batch_summary(
    console: Console, run_id: str, reports: list[EntityReport], seconds: float
) -> None:
    rows = Table(title=f"run {run_id}", title_justify="left")
    for column in (
        "source",
        "entity",
        "read",
        "new in raw",
        "kept",
        "quarantined",
        "dropped",
        "deleted",
    ):
        rows.add_column(column, justify="left" if column in ("source", "entity") else "right")
    rows.add_column("curated", justify="right")
    for r in reports:
        rows.add_row(
            r.source,
            r.entity,
            str(r.rows_read),
            str(r.raw_new_versions),
            str(r.kept),
            str(r.quarantined),
            str(r.dropped),
            str(r.deleted),
            str(r.curated_rows),
        )
    console.print(rows)

    reasons = Table("entity", "stage/outcome:rule", "rows", title="quarantined and dropped rows")
    for r in reports:
        for reason, count in sorted(r.reasons.items()):
            reasons.add_row(r.entity, reason, str(count))
    if reasons.row_count:
        console.print(reasons)

    stages = sorted({stage for r in reports for stage in r.seconds})
    timing = Table("entity", *stages, title="seconds per stage")
    for r in reports:
        timing.add_row(r.entity, *(f"{r.seconds.get(s, 0.0):.2f}" for s in stages))
    console.print(timing)
    console.print(f"total {seconds:.1f} s; details: steward runs show {run_id}")
