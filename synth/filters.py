"""The filters every backend's candidates pass, with counts per reason.

In order, each seeing only what the previous ones kept:

1. ``cleaning:<rule id>``: the task's rule packs drop or quarantine the record (kept records
   continue cleaned, as the real ones were);
2. ``pii:<TYPE>``: any PII finding in any string value (synthetic data has no business
   carrying personal data, whoever it belongs to);
3. ``duplicate:exact`` / ``duplicate:queued``: the same record twice in this run, or already
   in the review queue from an earlier run;
4. ``memorised:embedding`` / ``memorised:ngram`` / ``memorised:exact``: too close to a real
   record (cosine above the threshold, a shared run of ``max_ngram`` tokens, or for
   structured records every cell equal);
5. ``duplicate:near``: cosine above ``dedup_cosine`` to a sample kept before it (or queued);
6. ``label_mismatch``: the nearest label centroid is another label: flagged for the
   reviewer (never auto-approved) or dropped, as configured.

Like a pipeline stage, the filter reports generated = kept + dropped, by reason.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cleaning_rules.engine import RuleSet
from privacy.detect import Detector
from synth.config import SynthTask
from synth.exemplars import label_margin, nearest_label
from synth.features import Featurizer
from synth.samples import Candidate, SeedSet, sample_id
from synth.tokens import NgramIndex

LABEL_MISMATCH = "label_mismatch"


@dataclass(frozen=True)
class Screened:
    """A candidate that passed: cleaned record, id, flags and the scores behind them."""

    sample_id: str
    candidate: Candidate
    record: dict[str, Any]
    flags: tuple[str, ...]
    nearest_real: float
    margin: float


@dataclass
class FilterReport:
    generated: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)

    @property
    def balanced(self) -> bool:
        return self.generated == self.kept + sum(self.dropped.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "flagged": dict(sorted(self.flagged.items())),
        }


@dataclass(frozen=True)
class QueuedSamples:
    """What the queue already holds for the task: ids, and vectors for near-duplicates."""

    ids: frozenset[str]
    vectors: np.ndarray


class SampleFilter:
    def __init__(
        self,
        task: SynthTask,
        ruleset: RuleSet,
        detector: Detector,
        seed: SeedSet,
        featurizer: Featurizer,
        centroids: dict[str, np.ndarray],
    ):
        self.task = task
        self.ruleset = ruleset
        self.detector = detector
        self.seed = seed
        self.featurizer = featurizer
        self.centroids = centroids
        seed_texts = [t for t in (featurizer.text(r) for r in seed.records) if t is not None]
        self._ngrams = (
            NgramIndex(seed_texts, task.filters.memorisation.max_ngram) if seed_texts else None
        )
        self._seed_records = {_canonical(r, self._fields) for r in seed.records}

    @property
    def _fields(self) -> tuple[str, ...]:
        if self.task.text_field is not None:
            return (self.task.text_field, self.task.label_field)
        columns = getattr(self.task.backend, "columns", [])
        return tuple(c.name for c in columns)

    def run(
        self, candidates: Sequence[Candidate], queued: QueuedSamples
    ) -> tuple[list[Screened], FilterReport]:
        report = FilterReport(generated=len(candidates))
        first: list[tuple[str, Candidate, dict[str, Any]]] = []
        seen = set(queued.ids)
        for candidate in candidates:
            record, reason = self._clean_and_scan(candidate)
            if reason is None:
                sid = sample_id(self.task.name, candidate.label, record)
                if sid in queued.ids:
                    reason = "duplicate:queued"
                elif sid in seen:
                    reason = "duplicate:exact"
                seen.add(sid)
            if reason is not None:
                report.dropped[reason] += 1
                continue
            first.append((sid, candidate, record))

        kept = self._screen_vectors(first, queued, report)
        report.kept = len(kept)
        return kept, report

    def _clean_and_scan(self, candidate: Candidate) -> tuple[dict[str, Any], str | None]:
        text_field, alias = self.task.text_field, self.task.filters.field
        record = dict(candidate.record)
        if text_field is not None and alias is not None and alias != text_field:
            record[alias] = record.pop(text_field)
        result = self.ruleset.apply(self.task.entity, record)
        if result.verdict != "keep":
            return candidate.record, f"cleaning:{result.rule_id}"
        record = dict(result.record)
        if text_field is not None and alias is not None and alias != text_field:
            record[text_field] = record.pop(alias)
        for name, value in record.items():
            if name == self.task.label_field or not isinstance(value, str):
                continue
            findings = self.detector.scan(value)
            if findings:
                return record, f"pii:{findings[0].type}"
        return record, None

    def _screen_vectors(
        self,
        items: list[tuple[str, Candidate, dict[str, Any]]],
        queued: QueuedSamples,
        report: FilterReport,
    ) -> list[Screened]:
        if not items:
            return []
        config = self.task.filters
        vectors = self.featurizer.vectors([record for _, _, record in items])
        nearest_real = (vectors @ self.seed.vectors.T).max(axis=1)
        predicted = nearest_label(vectors, self.centroids)
        structured = self.task.text_field is None
        kept: list[Screened] = []
        kept_vectors: list[np.ndarray] = list(queued.vectors)
        for i, (sid, candidate, record) in enumerate(items):
            reason = self._memorised(record, float(nearest_real[i]), structured)
            if (
                reason is None
                and not structured
                and kept_vectors
                and float(np.max(np.stack(kept_vectors) @ vectors[i])) > config.dedup_cosine
            ):
                reason = "duplicate:near"
            flags: tuple[str, ...] = ()
            if reason is None and predicted[i] != candidate.label:
                if config.label_check == "drop":
                    reason = LABEL_MISMATCH
                else:
                    flags = (LABEL_MISMATCH,)
                    report.flagged[LABEL_MISMATCH] += 1
            if reason is not None:
                report.dropped[reason] += 1
                continue
            kept_vectors.append(vectors[i])
            margin = label_margin(vectors[i : i + 1], candidate.label, self.centroids)[0]
            kept.append(
                Screened(sid, candidate, record, flags, float(nearest_real[i]), float(margin))
            )
        return kept

    def _memorised(self, record: dict[str, Any], nearest: float, structured: bool) -> str | None:
        if structured:
            copied = _canonical(record, self._fields) in self._seed_records
            return "memorised:exact" if copied else None
        if nearest > self.task.filters.memorisation.max_cosine:
            return "memorised:embedding"
        text = self.featurizer.text(record)
        if self._ngrams is not None and text is not None and self._ngrams.shares_run(text):
            return "memorised:ngram"
        return None


def _canonical(record: dict[str, Any], fields: Sequence[str]) -> str:
    # 57 and 57.0 are the same cell: the model writes ints where the source has floats.
    return json.dumps([_cell(record.get(f)) for f in fields], ensure_ascii=False)


def _cell(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)
