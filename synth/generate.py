"""One synth task end to end: seed data → exemplars → backend → filters → review queue.

    report = generate_task(lake, task, encoder, run_id=run_id)

The seed set is ``curated.<dataset>`` without its synthetic rows (a sample is never the seed
of another). A label gets only its shortfall: ``per_label`` minus the samples already
pending or approved, so re-running a task tops the queue up instead of growing it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.errors import ConfigError
from synth.backends import backend_for
from synth.config import DpTabularBackend, SynthTask
from synth.embed import TextEncoder
from synth.exemplars import centroids, mmr
from synth.features import Featurizer, TabularFeaturizer, TextFeaturizer
from synth.filters import FilterReport, QueuedSamples, SampleFilter, Screened
from synth.queue import QueuedSample, ReviewQueue, Selection
from synth.samples import GenerationContext, GenerationJob, LabelRequest, SeedSet
from synth.tabular import TabularCodec
from synth.tokens import distinct_ngrams

if TYPE_CHECKING:
    from pipelines.lake import Lake
    from pipelines.ledger import RunRecord

SYNTHETIC_FIELD = "_synthetic"


@dataclass
class TaskReport:
    """What a generate run did for one task (printed, and counted in the run ledger)."""

    task: str
    run_id: str
    requested: dict[str, int]
    filters: FilterReport
    queued: int = 0
    auto_approved: int = 0
    spot_checks: int = 0
    status: dict[str, int] = field(default_factory=dict)
    diversity: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "run_id": self.run_id,
            "requested": self.requested,
            **self.filters.to_json(),
            "queued": self.queued,
            "auto_approved": self.auto_approved,
            "spot_checks": self.spot_checks,
            "status": self.status,
            "diversity": self.diversity,
            "usage": self.usage,
            "backend": self.backend,
            "seconds": round(self.seconds, 2),
        }


def featurizer_for(task: SynthTask, encoder: TextEncoder | None) -> Featurizer:
    if isinstance(task.backend, DpTabularBackend):
        return TabularFeaturizer(TabularCodec(task.backend.columns), task.label_field)
    if encoder is None:
        raise ConfigError(f"synth task {task.name}: a text task needs an embedding model")
    assert task.text_field is not None
    return TextFeaturizer(encoder, task.text_field)


def load_seed(lake: Lake, task: SynthTask, featurizer: Featurizer) -> SeedSet:
    """The real labelled records of ``curated.<dataset>`` with their feature vectors."""
    table = lake.read(f"curated.{task.dataset}")
    needed = [task.key_field, task.label_field]
    if task.text_field is not None:
        needed.append(task.text_field)
    if isinstance(task.backend, DpTabularBackend):
        needed += [c.name for c in task.backend.columns]
    missing = sorted(set(needed) - set(table.column_names))
    if missing:
        raise ConfigError(
            f"synth task {task.name}: curated.{task.dataset} has no column {', '.join(missing)}"
        )
    rows = [
        r
        for r in table.to_pylist()
        if not r.get(SYNTHETIC_FIELD) and r.get(task.label_field) is not None
    ]
    if task.text_field is not None:
        rows = [r for r in rows if isinstance(r.get(task.text_field), str) and r[task.text_field]]
    else:
        codec = TabularCodec(task.backend.columns)  # type: ignore[union-attr]
        rows = [r for r in rows if codec.encode(r) is not None]
    if not rows:
        raise ConfigError(f"synth task {task.name}: curated.{task.dataset} has no labelled rows")
    keys = [str(r[task.key_field]) for r in rows]
    labels = [str(r[task.label_field]) for r in rows]
    return SeedSet(keys, rows, labels, featurizer.vectors(rows))


def generate_task(
    lake: Lake,
    task: SynthTask,
    encoder: TextEncoder | None,
    *,
    run_id: str,
    run: RunRecord | None = None,
) -> TaskReport:
    """Generate, filter and queue the task's shortfall; auto-approve if configured."""
    from cleaning_rules.engine import load_packs
    from privacy.detect import Detector

    started = time.perf_counter()
    featurizer = featurizer_for(task, encoder)
    seed = load_seed(lake, task, featurizer)
    label_centroids = centroids(seed.vectors, seed.labels)
    labels = task.labels or sorted(set(seed.labels))
    unknown = sorted(set(labels) - set(seed.labels))
    if unknown:
        raise ConfigError(
            f"synth task {task.name}: no seed rows for label {', '.join(unknown)}"
            f" in curated.{task.dataset}"
        )

    queue = ReviewQueue(lake)
    existing = queue.samples(Selection(task=task.name, status=None))
    live = Counter(s.label for s in existing if s.status != "rejected")
    requests = []
    for label in labels:
        rows = seed.of_label(label)
        picked = mmr(seed.vectors[rows], task.exemplars.k, task.exemplars.diversity_lambda)
        count = max(0, task.per_label - live[label])
        if count:
            requests.append(LabelRequest(label, count, [rows[i] for i in picked]))

    backend = backend_for(task.backend)
    context = GenerationContext(encoder, label_centroids, lake.config.root, run_id)
    if requests:
        result = backend.generate(GenerationJob(task, seed, requests, context))
    else:
        from synth.samples import GenerationResult

        result = GenerationResult([])

    sample_filter = SampleFilter(
        task,
        load_packs(task.filters.rule_packs),
        Detector(threshold=task.filters.pii_threshold),
        seed,
        featurizer,
        label_centroids,
    )
    queued = QueuedSamples(
        frozenset(s.sample_id for s in existing),
        _queued_vectors(featurizer, existing),
    )
    kept, filter_report = sample_filter.run(result.candidates, queued)

    report = TaskReport(
        task.name,
        run_id,
        {r.label: r.count for r in requests},
        filter_report,
        usage=result.usage.as_reasons(),
        backend={"kind": task.backend.kind, **result.report},
    )
    rows = [_queue_row(task, backend.name, s, run_id) for s in kept]
    queue.add(rows, run_id)
    report.queued = len(rows)
    report.spot_checks = sum(1 for r in rows if r["spot_check"])
    if task.review.auto_approve:
        approvable = [r["sample_id"] for r in rows if not r["flags"] and not r["spot_check"]]
        report.auto_approved = queue.decide(
            approvable,
            "approved",
            reviewer="auto",
            reason="auto-approved: passed every filter",
            auto=True,
            run_id=run_id,
        )
    report.status = queue.counts(task.name)
    report.diversity = diversity(featurizer, seed, labels, [s.record for s in kept])
    report.seconds = time.perf_counter() - started
    if run is not None:
        _record(run, task, report, result.usage.as_reasons())
    return report


def _queued_vectors(featurizer: Featurizer, samples: list[QueuedSample]) -> np.ndarray:
    live = [s.record for s in samples if s.status != "rejected"]
    if not live or isinstance(featurizer, TabularFeaturizer):
        return np.zeros((0, 1), dtype=np.float32)
    return featurizer.vectors(live)


def _spot_check(task: SynthTask, sample_id: str) -> bool:
    """A fixed share of auto-approvable samples left to a person, chosen by id so a re-run
    picks the same ones."""
    if not task.review.auto_approve:
        return False
    digest = hashlib.sha256(f"spot:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < task.review.spot_check_rate


def _queue_row(task: SynthTask, generator: str, s: Screened, run_id: str) -> dict[str, Any]:
    params = {"backend": task.backend.model_dump(mode="json"), "sample": dict(s.candidate.params)}
    return {
        "sample_id": s.sample_id,
        "task": task.name,
        "dataset": task.dataset,
        "label": s.candidate.label,
        "text": str(s.record[task.text_field]) if task.text_field else None,
        "record": json.dumps(s.record, ensure_ascii=False, sort_keys=True, default=str),
        "seed_keys": list(s.candidate.seed_keys),
        "generator": generator,
        "generator_params": json.dumps(params, ensure_ascii=False, sort_keys=True),
        "flags": list(s.flags),
        "spot_check": not s.flags and _spot_check(task, s.sample_id),
        "nearest_real": round(s.nearest_real, 4),
        "label_margin": round(s.margin, 4),
        "run_id": run_id,
        "created_at": datetime.now(UTC),
    }


def diversity(
    featurizer: Featurizer, seed: SeedSet, labels: list[str], records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Distinct-1/2 and embedding spread (mean pairwise cosine distance) of the new samples
    beside the real seed rows of the same labels (other labels would inflate the spread)."""

    def describe(texts: list[str], vectors: np.ndarray) -> dict[str, float]:
        n = len(vectors)
        spread = 0.0
        if n > 1:
            sims = vectors @ vectors.T
            spread = float(1 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
        result = {"rows": n, "embedding_spread": round(spread, 4)}
        if texts:
            result["distinct_1"] = round(distinct_ngrams(texts, 1), 4)
            result["distinct_2"] = round(distinct_ngrams(texts, 2), 4)
        return result

    def texts_of(rows: list[dict[str, Any]]) -> list[str]:
        return [t for t in (featurizer.text(r) for r in rows) if t is not None]

    vectors = featurizer.vectors(records) if records else np.zeros((0, 1), np.float32)
    rows = [i for label in labels for i in seed.of_label(label)]
    return {
        "seed": describe(texts_of([seed.records[i] for i in rows]), seed.vectors[rows]),
        "synthetic": describe(texts_of(records), vectors),
    }


def _record(run: RunRecord, task: SynthTask, report: TaskReport, usage: dict[str, int]) -> None:
    from pipelines.ledger import StageCounts

    f = report.filters
    run.record_stage(
        StageCounts(
            stage="synth.generate",
            entity=task.name,
            rows_in=f.generated,
            rows_out=f.generated,
            reasons=usage,
        )
    )
    run.record_stage(
        StageCounts(
            stage="synth.filter",
            entity=task.name,
            rows_in=f.generated,
            rows_out=f.kept,
            dropped=sum(f.dropped.values()),
            reasons={f"drop:{k}": v for k, v in f.dropped.items()}
            | {f"flag:{k}": v for k, v in f.flagged.items()},
            duration_s=report.seconds,
        )
    )
