"""``steward synth``: generate synthetic samples, review them, publish the approved ones.

All commands read the ``synth:`` and ``lake:`` sections of ``pipeline.yaml`` (through a
wrapper model that ignores other sections, so they work whether or not ``PipelineConfig``
declares ``synth`` yet). Review commands act on ids, or on a filter (task, label, status,
flag); acting on a filter without ids needs ``--all`` so a bulk decision is never an accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.commands.common import ConfigOption, JsonOption, handles_errors, out, print_json
from pipelines.errors import ConfigError

if TYPE_CHECKING:
    from pipelines.config import LakeConfig
    from synth.config import SynthConfig

synth_app = typer.Typer(
    help="Few-shot synthetic samples and their review queue.", no_args_is_help=True
)
review_app = typer.Typer(help="The human review queue.", no_args_is_help=True)
synth_app.add_typer(review_app, name="review")

TaskOption = Annotated[
    list[str] | None, typer.Option("--task", "-t", help="Only this task (repeatable).")
]
StatusChoice = ("pending", "approved", "rejected", "all")


def load_synth_config(path: Path) -> tuple[LakeConfig, SynthConfig]:
    """The lake and synth sections of the pipeline config (paths already anchored)."""
    from pipelines.config import load_config

    config = load_config(path)
    if config.synth is None:
        raise ConfigError(f"{path}: no synth section (see `steward synth generate --help`)")
    return config.lake, config.synth


def _tasks(config: Path, names: list[str] | None) -> tuple[Any, list[Any]]:
    from pipelines.lake import Lake

    lake_config, synth = load_synth_config(config)
    tasks = [synth.task(n) for n in names] if names else list(synth.tasks)
    if not tasks:
        raise ConfigError(f"{config}: synth has no tasks")
    return Lake(lake_config), tasks


def _lake(config: Path) -> Any:
    from pipelines.lake import Lake

    return Lake(load_synth_config(config)[0])


@synth_app.command("generate")
@handles_errors
def generate_command(
    config: ConfigOption = Path("pipeline.yaml"),
    task: TaskOption = None,
    as_json: JsonOption = False,
) -> None:
    """Generate each task's shortfall, filter it and put it in the review queue."""
    from pipelines.config import config_hash
    from pipelines.ledger import RunLedger
    from synth.config import DpTabularBackend
    from synth.embed import MiniLMEncoder
    from synth.generate import generate_task

    lake, tasks = _tasks(config, task)
    encoder = None
    if any(not isinstance(t.backend, DpTabularBackend) for t in tasks):
        with out.status("Loading the embedding model…"):
            encoder = MiniLMEncoder()
    reports = []
    with RunLedger(lake.config.ledger).run("synth", config_hash(config)) as run:
        for t in tasks:
            with out.status(f"Generating {t.name}…"):
                reports.append(generate_task(lake, t, encoder, run_id=run.run_id, run=run))
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    for r in reports:
        data = r.to_json()
        dropped = ", ".join(f"{k}={v}" for k, v in data["dropped"].items()) or "none"
        flagged = ", ".join(f"{k}={v}" for k, v in data["flagged"].items()) or "none"
        status = ", ".join(f"{k}={v}" for k, v in data["status"].items())
        out.print(f"[bold]{r.task}[/bold] (run {r.run_id}, {data['seconds']} s)")
        out.print(
            f"  requested {sum(r.requested.values())}, generated {data['generated']},"
            f" kept {data['kept']}, queued {data['queued']}, auto-approved"
            f" {data['auto_approved']}, spot checks {data['spot_checks']}",
            highlight=False,
        )
        out.print(f"  dropped: {dropped}; flagged: {flagged}", highlight=False)
        out.print(f"  queue: {status}", highlight=False)
        seed, synth = data["diversity"]["seed"], data["diversity"]["synthetic"]
        out.print(f"  diversity seed {seed} / synthetic {synth}", highlight=False)
        if data["usage"]:
            out.print(f"  usage: {data['usage']}", highlight=False)
        if "fidelity" in data["backend"]:
            fidelity = data["backend"]["fidelity"]
            out.print(
                f"  dp-tabular: epsilon {data['backend']['epsilon']}, mean marginal TVD"
                f" {fidelity.get('mean_marginal_tvd')}, mean Cramér's V difference"
                f" {fidelity.get('mean_cramers_v_difference')}",
                highlight=False,
            )


def _selection(
    ids: list[str] | None,
    task: str | None,
    label: str | None,
    status: str,
    flag: str | None,
    unflagged: bool,
    spot_check: bool | None,
) -> Any:
    from synth.queue import Selection

    if status not in StatusChoice:
        raise typer.BadParameter(f"one of {', '.join(StatusChoice)}", param_hint="--status")
    return Selection(
        ids=tuple(ids or ()),
        task=task,
        label=label,
        status=None if status == "all" else status,  # type: ignore[arg-type]
        flag=flag,
        unflagged=unflagged,
        spot_check=spot_check,
    )


FilterTask = Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")]
FilterLabel = Annotated[str | None, typer.Option(help="Only this label.")]
FilterFlag = Annotated[str | None, typer.Option(help="Only samples with this flag.")]
FilterUnflagged = Annotated[bool, typer.Option("--unflagged", help="Only unflagged samples.")]
FilterSpot = Annotated[
    bool | None, typer.Option("--spot-check/--no-spot-check", help="Only spot checks (or not).")
]


@review_app.command("list")
@handles_errors
def review_list(
    config: ConfigOption = Path("pipeline.yaml"),
    task: FilterTask = None,
    label: FilterLabel = None,
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
    flag: FilterFlag = None,
    unflagged: FilterUnflagged = False,
    spot_check: FilterSpot = None,
    limit: Annotated[int, typer.Option(min=1, help="Most samples shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Samples in the review queue (default: pending)."""
    from rich.table import Table

    from synth.queue import ReviewQueue

    selection = _selection(None, task, label, status, flag, unflagged, spot_check)
    samples = ReviewQueue(_lake(config)).samples(selection)
    if as_json:
        print_json([s.to_json() for s in samples[:limit]])
        return
    table = Table("id", "task", "label", "status", "flags", "text")
    for s in samples[:limit]:
        flags = ",".join(s.flags + (["spot-check"] if s.spot_check else []))
        text = s.text if s.text is not None else str(s.record)
        table.add_row(s.sample_id, s.task, s.label, s.status, flags, text[:80])
    out.print(table)
    out.print(f"{len(samples)} samples ({min(limit, len(samples))} shown)")


@review_app.command("show")
@handles_errors
def review_show(
    sample_id: Annotated[str, typer.Argument(help="A sample id (syn-…).")],
    config: ConfigOption = Path("pipeline.yaml"),
    as_json: JsonOption = False,
) -> None:
    """One sample in full: record, seed keys, generator and params, scores, decisions."""
    from synth.queue import ReviewQueue

    sample, history = ReviewQueue(_lake(config)).get(sample_id)
    data = {**sample.to_json(full=True), "decisions": history}
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        out.print(f"[bold]{key}[/bold]: {value}", highlight=False)


def _decide(
    decision: str,
    ids: list[str] | None,
    config: Path,
    reviewer: str,
    reason: str | None,
    task: str | None,
    label: str | None,
    flag: str | None,
    unflagged: bool,
    spot_check: bool | None,
    every: bool,
    as_json: bool,
) -> None:
    from synth.queue import ReviewQueue

    if not ids and not every:
        raise ConfigError(
            "name sample ids, or pass --all to decide every sample the filter selects"
        )
    queue = ReviewQueue(_lake(config))
    # Named ids are decided whatever their status (a reviewer may change their mind); a bulk
    # filter only takes pending samples.
    status = "all" if ids else "pending"
    selection = _selection(ids, task, label, status, flag, unflagged, spot_check)
    chosen = [s.sample_id for s in queue.samples(selection)]
    missing = sorted(set(ids or ()) - set(chosen))
    if missing:
        raise ConfigError(f"no queued sample {', '.join(missing[:5])} (or it does not match)")
    count = queue.decide(chosen, decision, reviewer=reviewer, reason=reason)  # type: ignore[arg-type]
    if as_json:
        print_json({"decision": decision, "count": count, "sample_ids": chosen})
    else:
        out.print(f"{decision} {count} samples as {reviewer}", highlight=False)


ReviewerOption = Annotated[str, typer.Option("--reviewer", "-r", help="Who decides.")]
IdsArgument = Annotated[list[str] | None, typer.Argument(help="Sample ids.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every pending sample the filter selects.")]


@review_app.command("approve")
@handles_errors
def review_approve(
    ids: IdsArgument = None,
    reviewer: ReviewerOption = ...,  # type: ignore[assignment]
    reason: Annotated[str | None, typer.Option(help="Why (recorded).")] = None,
    config: ConfigOption = Path("pipeline.yaml"),
    task: FilterTask = None,
    label: FilterLabel = None,
    flag: FilterFlag = None,
    unflagged: FilterUnflagged = False,
    spot_check: FilterSpot = None,
    every: AllOption = False,
    as_json: JsonOption = False,
) -> None:
    """Approve samples by id, or every pending sample a filter selects (--all)."""
    _decide(
        "approved",
        ids,
        config,
        reviewer,
        reason,
        task,
        label,
        flag,
        unflagged,
        spot_check,
        every,
        as_json,
    )


@review_app.command("reject")
@handles_errors
def review_reject(
    ids: IdsArgument = None,
    reviewer: ReviewerOption = ...,  # type: ignore[assignment]
    reason: Annotated[str, typer.Option(help="Why (required, recorded).")] = ...,  # type: ignore[assignment]
    config: ConfigOption = Path("pipeline.yaml"),
    task: FilterTask = None,
    label: FilterLabel = None,
    flag: FilterFlag = None,
    unflagged: FilterUnflagged = False,
    spot_check: FilterSpot = None,
    every: AllOption = False,
    as_json: JsonOption = False,
) -> None:
    """Reject samples by id, or every pending sample a filter selects (--all)."""
    _decide(
        "rejected",
        ids,
        config,
        reviewer,
        reason,
        task,
        label,
        flag,
        unflagged,
        spot_check,
        every,
        as_json,
    )


@synth_app.command("publish")
@handles_errors
def publish_command(
    config: ConfigOption = Path("pipeline.yaml"),
    task: TaskOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append approved samples to curated.<dataset> (_synthetic=true); re-runs add nothing."""
    from pipelines.config import config_hash
    from pipelines.ledger import RunLedger
    from synth.publish import publish_task

    lake, tasks = _tasks(config, task)
    reports = []
    with RunLedger(lake.config.ledger).run("synth-publish", config_hash(config)) as run:
        for t in tasks:
            report = publish_task(lake, t, run_id=run.run_id)
            if report.snapshot_id is not None:
                run.record_commit(f"curated.{report.dataset}", report.snapshot_id, "append")
            reports.append(report)
    if as_json:
        print_json([r.to_json() for r in reports])
        return
    for r in reports:
        out.print(
            f"{r.task}: published {r.published} to curated.{r.dataset}"
            f" ({r.approved} approved, {r.already_published} already there)",
            highlight=False,
        )
        for sample_id, pii_type in r.blocked_pii.items():
            out.print(f"  held back {sample_id}: the PII re-check found {pii_type}")
