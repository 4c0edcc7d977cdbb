"""``steward privacy``: PII scan, treatment policies and the privacy budget."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Annotated, TextIO

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

privacy_app = typer.Typer(help="PII scan, treatment policies and the privacy budget.")

# Lines scanned together: large enough that the detector's per-call overhead vanishes, small
# enough that a stdin pipe shows results as it goes.
_SCAN_BATCH = 4096


def _lines(stream: TextIO) -> Iterator[list[str]]:
    while batch := [line.rstrip("\r\n") for line in islice(stream, _SCAN_BATCH)]:
        yield batch


@privacy_app.command("scan")
@handles_errors
def scan_command(
    source: Annotated[str, typer.Argument(help="A text file, or - for stdin.")] = "-",
    show: Annotated[
        bool, typer.Option("--show", help="Include the matched text (off: PII stays unprinted).")
    ] = False,
    types: Annotated[
        str | None, typer.Option(help="Comma-separated PII types (default: all).")
    ] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Minimum score.")] = 0.5,
    as_json: JsonOption = False,
) -> None:
    """Find PII line by line: type, character offsets and score (the text only with --show)."""
    import json

    from privacy.detect import Detector

    wanted = [t.strip() for t in types.split(",") if t.strip()] if types else None
    try:
        detector = Detector(wanted, threshold=threshold)
    except ValueError as exc:
        raise ConfigError(f"--types: {exc}") from None
    totals: Counter[str] = Counter()
    number = 0
    with _open(source) as stream:
        for batch in _lines(stream):
            for text, findings in zip(batch, detector.scan_many(batch), strict=True):
                number += 1
                totals.update(f.type for f in findings)
                if as_json:
                    record = {
                        "line": number,
                        "findings": [f.as_json(text if show else None) for f in findings],
                    }
                    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    for f in findings:
                        shown = f" {text[f.start : f.end]!r}" if show else ""
                        out.print(
                            f"line {number}: {f.type} [{f.start}:{f.end}] {f.score:.2f}{shown}"
                            f"  ({f.explanation()})",
                            highlight=False,
                            markup=False,
                            soft_wrap=True,
                        )
    if not as_json:
        summary = ", ".join(f"{t}={n}" for t, n in sorted(totals.items())) or "no PII found"
        out.print(f"{number} lines: {summary}", highlight=False)


@contextmanager
def _open(source: str) -> Iterator[TextIO]:
    """A text stream for ``-`` (stdin) or a path, closed only if we opened it."""
    if source == "-":
        yield sys.stdin
        return
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"{source}: no such file")
    with path.open(encoding="utf-8") as stream:
        yield stream


@privacy_app.command("budget")
@handles_errors
def budget_command(
    config: ConfigOption = Path("pipeline.yaml"),
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
    charges: Annotated[
        bool, typer.Option("--charges", help="List the dataset's charges (needs --dataset).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Privacy budget per dataset and privacy unit: configured, spent, reserved, remaining."""
    from privacy.ledger import BudgetLedger

    ledger = BudgetLedger.for_lake(lake_config(config).root)
    if charges:
        if dataset is None:
            raise ConfigError("--charges needs --dataset")
        rows = ledger.charges(dataset)
        if as_json:
            print_json(rows)
            return
        table = Table("created", "status", "kind", "epsilon after", "description", "reference")
        for row in rows:
            table.add_row(
                str(row["created_at"]),
                str(row["status"]),
                str(row["kind"]),
                f"{row['epsilon_after']:.3f}",
                str(row["description"]),
                str(row["reference"] or ""),
            )
        out.print(table)
        return
    statuses = ledger.status(dataset)
    if as_json:
        print_json([{**s.__dict__, "remaining_epsilon": s.remaining_epsilon} for s in statuses])
        return
    if not statuses:
        out.print(f"no privacy budget charged yet in {ledger.path}")
        return
    table = Table(
        "dataset", "unit", "epsilon", "delta", "accountant", "spent", "held", "remaining", "charges"
    )
    for s in statuses:
        table.add_row(
            s.dataset,
            s.privacy_unit,
            f"{s.epsilon:g}",
            f"{s.delta:g}",
            s.accountant,
            f"{s.spent_epsilon:.3f}",
            f"{s.reserved_epsilon:.3f}",
            f"{s.remaining_epsilon:.3f}",
            str(s.charges),
        )
    out.print(table)
    out.print("held = spent + reserved (releases not yet published); remaining = epsilon - held")


@privacy_app.command("check")
@handles_errors
def check_command(
    policy: Annotated[Path, typer.Argument(help="A privacy policy YAML.")],
    as_json: JsonOption = False,
) -> None:
    """Validate a treatment policy and show what it does (loads the key if it needs one)."""
    from privacy.policy import load_policy
    from privacy.stage import PrivacyStage

    loaded = load_policy(policy)
    stage = PrivacyStage(loaded)
    summary = {
        "dataset": loaded.dataset,
        "version": stage.version,
        "key_id": stage.key_id,
        "types": {t: loaded.span_treatment(t).action for t in stage.detector.types},
        "fields": {f: loaded.field_treatment(f).action for f in loaded.fields},
        "scan_fields": loaded.scan_fields or "every undeclared string column",
        "budget": loaded.budget.model_dump() if loaded.budget else None,
    }
    if as_json:
        print_json(summary)
        return
    out.print(f"[bold]{policy}[/bold]: dataset {loaded.dataset}, version {stage.version}")
    for section in ("types", "fields"):
        items = summary[section]
        assert isinstance(items, dict)
        out.print(f"{section}: " + ", ".join(f"{k}={v}" for k, v in items.items()), highlight=False)
