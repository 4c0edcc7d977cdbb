"""The values passed between the synth steps: seed data, generation jobs, candidates."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth.config import SynthTask
from synth.embed import TextEncoder


@dataclass(frozen=True)
class SeedSet:
    """The real, labelled records of a task (from ``curated.<dataset>``).

    ``vectors`` are the records' unit feature vectors (text embeddings for text tasks).
    """

    keys: list[str]
    records: list[dict[str, Any]]
    labels: list[str]
    vectors: np.ndarray

    def of_label(self, label: str) -> list[int]:
        return [i for i, name in enumerate(self.labels) if name == label]


@dataclass(frozen=True)
class LabelRequest:
    label: str
    count: int
    exemplars: list[int]  # indices into the seed set, in MMR order


@dataclass(frozen=True)
class GenerationContext:
    """What a backend may use besides the task: the encoder, the label centroids, where the
    privacy ledger lives, the run id."""

    encoder: TextEncoder | None
    centroids: Mapping[str, np.ndarray]
    lake_root: Path
    run_id: str


@dataclass(frozen=True)
class GenerationJob:
    task: SynthTask
    seed: SeedSet
    requests: list[LabelRequest]
    context: GenerationContext


@dataclass(frozen=True)
class Candidate:
    """A generated record before the filters. ``params`` are this sample's own generation
    details (operations applied, model and temperature…), kept in lineage."""

    record: dict[str, Any]
    label: str
    seed_keys: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Usage:
    """Requests and tokens an endpoint consumed (zero for offline backends)."""

    requests: int = 0
    retries: int = 0
    malformed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_reasons(self) -> dict[str, int]:
        return {f"usage:{k}": v for k, v in self.__dict__.items() if v}


@dataclass
class GenerationResult:
    candidates: list[Candidate]
    usage: Usage = field(default_factory=Usage)
    # Backend-specific report, e.g. dp-tabular's epsilon and fidelity.
    report: dict[str, Any] = field(default_factory=dict)


def sample_id(task: str, label: str, record: Mapping[str, Any]) -> str:
    """Deterministic id of a sample: the same content for the same task and label is the same
    sample, so a re-run cannot queue or publish it twice."""
    canonical = json.dumps(
        {"task": task, "label": label, "record": dict(record)},
        sort_keys=True,
        ensure_ascii=False,
        default=str,
        separators=(",", ":"),
    )
    return "syn-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
