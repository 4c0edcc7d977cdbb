"""The review queue in the lake and publishing approved samples, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.commands.synth import synth_app
from pipelines.lake import Lake
from synth.config import SynthTask
from synth.demo.support_tickets import DEMO_CONFIG_YAML
from synth.generate import generate_task
from synth.queue import ReviewQueue, Selection

runner = CliRunner()


@pytest.fixture
def config(lake: Lake, tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        f"lake: {{root: {lake.config.root}}}\n"
        + DEMO_CONFIG_YAML.replace("per_label: 40", "per_label: 6").replace(
            "auto_approve: true", "auto_approve: false"
        ),
        encoding="utf-8",
    )
    return path


def _cli(*args: str) -> dict | list:
    result = runner.invoke(synth_app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_review_and_publish(
    lake: Lake, task: SynthTask, encoder, config: Path, tmp_path: Path
) -> None:
    manual = task.model_copy(
        update={"review": task.review.model_copy(update={"auto_approve": False})}
    )
    generate_task(lake, manual, encoder, run_id="g1")
    c = str(config)
    pending = _cli("review", "list", "-c", c)
    assert len(pending) >= 4 and {s["status"] for s in pending} == {"pending"}
    first, second, *_ = (s["sample_id"] for s in pending)

    # By id, with reviewer and reason; a changed mind is a second decision, both kept.
    _cli("review", "reject", first, "-r", "ana", "--reason", "off topic", "-c", c)
    _cli("review", "approve", first, "-r", "bo", "--reason", "on reflection fine", "-c", c)
    shown = _cli("review", "show", first, "-c", c)
    assert shown["status"] == "approved" and shown["reviewer"] == "bo"
    assert [d["reviewer"] for d in shown["decisions"]] == ["ana", "bo"]
    assert shown["record"]["intent"] == shown["label"] and shown["seed_keys"]
    _cli("review", "reject", second, "-r", "ana", "--reason", "awkward", "-c", c)

    # A bulk decision needs --all; with it, the filter's pending samples.
    refused = runner.invoke(synth_app, ["review", "approve", "-r", "ana", "-c", c])
    assert refused.exit_code == 3 and "--all" in refused.output
    bulk = _cli("review", "approve", "--all", "--label", "damaged_item", "-r", "ana", "-c", c)
    assert first not in bulk["sample_ids"] and second not in bulk["sample_ids"]

    published = _cli("publish", "-c", c)[0]
    approved = ReviewQueue(lake).samples(Selection(status="approved"))
    assert published["published"] == len(approved) > 0
    again = _cli("publish", "-c", c)[0]
    assert again["published"] == 0 and again["already_published"] == len(approved)

    rows = lake.read("curated.support_tickets").to_pylist()
    synthetic = [r for r in rows if r["_synthetic"]]
    assert sorted(r["_source_key"] for r in synthetic) == sorted(s.sample_id for s in approved)
    assert second not in {r["_source_key"] for r in synthetic}
    for row in synthetic:
        assert row["_seed_keys"] and row["_generator"] == "substitute"
        assert json.loads(row["_generator_params"])["backend"]["kind"] == "substitute"
        assert row["_entity"] == "tickets" and row["_source"] == "synth:rare_support_intents"
        assert row["text"] and row["intent"] in {"refund_request", "damaged_item"}
    assert sum(1 for r in rows if not r["_synthetic"]) == len(rows) - len(synthetic)

    # Published samples are never seeds: a new run's seed set is the real rows only.
    from synth.generate import featurizer_for, load_seed

    seed = load_seed(lake, manual, featurizer_for(manual, encoder))
    assert not set(seed.keys) & {r["_source_key"] for r in synthetic}


def test_review_errors_are_one_line(config: Path) -> None:
    result = runner.invoke(synth_app, ["review", "show", "syn-nope", "-c", str(config)])
    assert result.exit_code == 3 and "no queued sample" in result.output
    result = runner.invoke(synth_app, ["review", "list", "--status", "odd", "-c", str(config)])
    assert result.exit_code == 2


def test_publish_rechecks_pii(lake: Lake, task: SynthTask) -> None:
    from datetime import UTC, datetime

    queue = ReviewQueue(lake)
    row = {
        "sample_id": "syn-pii",
        "task": task.name,
        "dataset": task.dataset,
        "label": "refund_request",
        "text": "Refund me, reach me at jane.doe@example.com",
        "record": json.dumps(
            {"text": "Refund me, reach me at jane.doe@example.com", "intent": "refund_request"}
        ),
        "seed_keys": ["T00001"],
        "generator": "openai",
        "generator_params": "{}",
        "flags": [],
        "spot_check": False,
        "nearest_real": 0.5,
        "label_margin": 0.1,
        "run_id": "r",
        "created_at": datetime.now(UTC),
    }
    queue.add([row], "r")
    queue.decide(["syn-pii"], "approved", reviewer="ana", reason="looked fine")
    from synth.publish import publish_task

    report = publish_task(lake, task, run_id="p")
    assert report.published == 0 and report.blocked_pii == {"syn-pii": "EMAIL"}
    assert "_synthetic" not in lake.read("curated.support_tickets").column_names
