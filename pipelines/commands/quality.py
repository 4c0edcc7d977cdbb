"""``steward quality``: the quality gates' results, as JSON summaries and Data Docs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipelines.commands.common import (
    ConfigOption,
    JsonOption,
    handles_errors,
    lake_config,
    out,
    print_json,
)
from pipelines.errors import ConfigError

quality_app = typer.Typer(help="Quality gates and their reports.", no_args_is_help=True)


@quality_app.command("report")
@handles_errors
def report_command(
    config: ConfigOption = Path("pipeline.yaml"),
    run: Annotated[str | None, typer.Option(help="A run id (default: the latest).")] = None,
    entity: Annotated[str | None, typer.Option(help="Only this entity.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Each gate of a run: passed or failed, rows, and the checks that failed."""
    from pipelines.quality import QualityReports

    reports = QualityReports(lake_config(config).root)
    run_ids = reports.run_ids()
    if run is None and not run_ids:
        raise ConfigError(f"no quality results yet in {reports.runs_dir}")
    run_id = run or run_ids[-1]
    results = [r for r in reports.results(run_id) if entity is None or r.entity == entity]
    if as_json:
        print_json([r.as_json() for r in results])
        return
    docs = reports.data_docs_index
    out.print(f"quality results of run [bold]{run_id}[/bold]")
    table = Table("entity", "gate", "result", "rows", "previous", "checks", "failed")
    for r in results:
        failed = [c for c in r.checks if not c.success]
        table.add_row(
            r.entity,
            r.gate,
            "[green]passed[/green]" if r.passed else "[red]BLOCKED[/red]",
            str(r.rows),
            "" if r.previous_rows is None else str(r.previous_rows),
            str(len(r.checks)),
            ", ".join(
                c.name + (f" ({c.unexpected_count})" if c.unexpected_count else "") for c in failed
            ),
        )
    out.print(table)
    if docs.exists():
        out.print(f"Data Docs: {docs.as_uri()}", highlight=False)
