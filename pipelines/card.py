"""The dataset card of a release: what a trainer is training on, as JSON and as README.md.

``build_card`` reads everything it can from the released rows themselves (rows by source,
synthetic share, rule-pack and privacy-policy versions, run ids, the ``_ingested_at`` range), so
the card cannot disagree with the data; what the rows do not carry (column descriptions from
the contract, quality results, privacy budget spent) comes in as arguments. ``card_files``
gives the two files as bytes; ``describe_with_card`` hands them to ``Lake.release``, which
writes them into the release's staging folder so card and data are published by one rename.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import EntityContract, QualityConfig

if TYPE_CHECKING:
    from pipelines.lake import Lake
    from pipelines.quality import QualityResult

CARD_JSON = "_dataset_card.json"
CARD_README = "README.md"
CARD_FORMAT = 1

# Columns the pipeline adds to every row (ARCHITECTURE.md, "Contracts every stage keeps").
LINEAGE_DESCRIPTIONS: dict[str, str] = {
    "_source": "Source system the row came from (a key of pipeline.yaml's sources).",
    "_entity": "Entity (source table) the row belongs to.",
    "_source_key": "The row's key at the source, as text; unique within the entity.",
    "_ingested_at": "When the row version was read from the source (UTC).",
    "_run_id": "The pipeline run that ingested this version (steward runs show <id>).",
    "_content_hash": "SHA-256 of the source columns; equal hashes mean an unchanged row.",
    "_rules_version": "Hash of the cleaning rule packs applied.",
    "_privacy_policy_version": "Version of the privacy policy applied.",
    "_synthetic": "True for generated rows (approved in review), false for source rows.",
    "_seed_keys": "For synthetic rows: the source keys of the exemplars it was generated from.",
}


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    if column not in table.column_names:
        return {}
    counts = Counter(str(v) for v in table.column(column).to_pylist() if v is not None)
    return dict(sorted(counts.items()))


def _time_range(table: pa.Table, column: str) -> dict[str, str | None]:
    if column not in table.column_names or table.num_rows == 0:
        return {"column": column, "start": None, "end": None}
    bounds = pc.min_max(table.column(column)).as_py()
    return {
        "column": column,
        "start": _iso(bounds["min"]),
        "end": _iso(bounds["max"]),
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _schema(table: pa.Table, contract: EntityContract | None) -> list[dict[str, Any]]:
    columns = []
    for f in table.schema:
        described = contract.column(f.name) if contract is not None else None
        description = described.description if described else LINEAGE_DESCRIPTIONS.get(f.name, "")
        columns.append(
            {
                "name": f.name,
                "type": str(f.type),
                "logical_type": described.type if described else None,
                "nullable": f.nullable,
                "description": description,
            }
        )
    return columns


def _quality(results: Sequence[QualityResult]) -> list[dict[str, Any]]:
    return [
        {
            "entity": r.entity,
            "gate": r.gate,
            "run_id": r.run_id,
            "passed": r.passed,
            "rows": r.rows,
            "checks": len(r.checks),
            "failed": [c.name for c in r.checks if not c.success],
            "checked_at": r.checked_at,
        }
        for r in results
    ]


def build_card(
    data: pa.Table,
    *,
    dataset: str,
    version: str,
    snapshot_id: int | None = None,
    contract: EntityContract | None = None,
    quality: Sequence[QualityResult] = (),
    privacy_budget: Mapping[str, Any] | None = None,
    files: Sequence[str] = ("part-00000.parquet",),
) -> dict[str, Any]:
    """The card of ``data`` (the released rows) as a JSON-ready dict.

    ``privacy_budget`` is what releasing this data spent (for example
    ``{"epsilon": 0.8, "delta": 1e-6, "accountant": "rdp"}``, as the privacy ledger reports
    it); None when nothing was charged.
    """
    rows = data.num_rows
    synthetic = 0
    if "_synthetic" in data.column_names:
        synthetic = int(pc.sum(pc.fill_null(data.column("_synthetic"), False)).as_py() or 0)
    return {
        "card_format": CARD_FORMAT,
        "dataset": dataset,
        "version": version,
        "snapshot_id": snapshot_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "description": contract.description if contract is not None else None,
        "contract": (
            {"entity": contract.entity, "version": contract.version} if contract else None
        ),
        "rows": rows,
        "files": list(files),
        "rows_by_source": _counts(data, "_source"),
        "synthetic": {"rows": synthetic, "share": round(synthetic / rows, 6) if rows else 0.0},
        "rules_versions": _counts(data, "_rules_version"),
        "privacy": {
            "policy_versions": _counts(data, "_privacy_policy_version"),
            "budget_spent": dict(privacy_budget) if privacy_budget is not None else None,
        },
        "quality": _quality(quality),
        "run_ids": sorted(_counts(data, "_run_id")),
        "data_time_range": _time_range(data, "_ingested_at"),
        "schema": _schema(data, contract),
    }


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [str(c).replace("|", "\\|").replace("\n", " ") for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_card(card: Mapping[str, Any]) -> str:
    """The card as Markdown (the release's README.md)."""
    name = f"{card['dataset']} {card['version']}"
    data = f"releases/{card['dataset']}/{card['version']}/data"
    lines = [f"# {name}", ""]
    if card.get("description"):
        lines += [card["description"], ""]
    synthetic = card["synthetic"]
    span = card["data_time_range"]
    lines += [
        f"- rows: {card['rows']}",
        f"- curated snapshot: {card['snapshot_id']}",
        f"- synthetic rows: {synthetic['rows']} ({synthetic['share']:.2%})",
        f"- data ingested from {span['start'] or '-'} to {span['end'] or '-'}",
        f"- runs: {', '.join(card['run_ids']) or '-'}",
        f"- card written {card['created_at']}",
        "",
        "## Reading it",
        "",
        "```python",
        "import pyarrow.dataset as ds",
        f'table = ds.dataset("{data}", format="parquet").to_table()',
        "",
        "import pandas as pd",
        f'frame = pd.read_parquet("{data}")',
        "",
        "from datasets import load_dataset",
        f'train = load_dataset("parquet", data_dir="{data}")',
        "```",
        "",
        "## Rows by source",
        "",
        *_table(sorted(card["rows_by_source"].items()), ["source", "rows"]),
        "",
        "## Versions",
        "",
        *_table(
            [("rule packs", v, n) for v, n in card["rules_versions"].items()]
            + [("privacy policy", v, n) for v, n in card["privacy"]["policy_versions"].items()],
            ["applied", "version", "rows"],
        ),
        "",
    ]
    budget = card["privacy"]["budget_spent"]
    lines += [
        "## Privacy budget spent",
        "",
        ", ".join(f"{k}: {v}" for k, v in budget.items()) if budget else "none charged",
        "",
        "## Quality",
        "",
    ]
    if card["quality"]:
        lines += _table(
            [
                (
                    q["entity"],
                    q["gate"],
                    q["run_id"],
                    "passed" if q["passed"] else "FAILED",
                    q["rows"],
                    ", ".join(q["failed"]) or "-",
                )
                for q in card["quality"]
            ],
            ["entity", "gate", "run", "result", "rows", "failed checks"],
        )
    else:
        lines.append("no quality results recorded")
    lines += [
        "",
        "## Schema",
        "",
        *_table(
            [(c["name"], c["type"], c["description"]) for c in card["schema"]],
            ["column", "type", "description"],
        ),
        "",
    ]
    return "\n".join(lines)


def card_files(card: Mapping[str, Any]) -> dict[str, bytes]:
    """File name → content of the card, for writing into a release's staging folder."""
    return {
        CARD_JSON: json.dumps(card, indent=2, ensure_ascii=False, default=str).encode("utf-8"),
        CARD_README: render_card(card).encode("utf-8"),
    }


def describe_with_card(
    *,
    contract: EntityContract | None = None,
    quality: Sequence[QualityResult] = (),
    privacy_budget: Mapping[str, Any] | None = None,
) -> Callable[[pa.Table, dict[str, Any]], dict[str, bytes]]:
    """What ``Lake.release(describe=…)`` takes: the card files of the released rows, written
    into the release's staging folder so data and card are published by the same rename."""

    def describe(data: pa.Table, manifest: dict[str, Any]) -> dict[str, bytes]:
        card = build_card(
            data,
            dataset=manifest["dataset"],
            version=manifest["version"],
            snapshot_id=manifest["snapshot_id"],
            contract=contract,
            quality=quality,
            privacy_budget=privacy_budget,
            files=manifest["files"],
        )
        return card_files(card)

    return describe


def release_with_card(lake: Lake, quality: QualityConfig, dataset: str, **release: Any) -> Any:
    """Release ``curated.<dataset>`` with its card: the dataset's contract and the newest
    curated-gate quality result on record for it."""
    from pipelines.contracts import load_contracts
    from pipelines.quality import QualityReports

    reports = QualityReports(lake.config.root)
    latest = [
        result
        for run_id in reversed(reports.run_ids())
        for result in reports.results(run_id)
        if result.entity == dataset and result.gate == "curated"
    ][:1]
    contract = load_contracts(quality.contracts_path).get(dataset)
    return lake.release(
        dataset, describe=describe_with_card(contract=contract, quality=latest), **release
    )


__all__ = [
    "CARD_JSON",
    "CARD_README",
    "LINEAGE_DESCRIPTIONS",
    "build_card",
    "card_files",
    "describe_with_card",
    "release_with_card",
    "render_card",
]
