"""The synth config is validated at the edge, with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.commands.synth import load_synth_config
from pipelines.errors import ConfigError
from synth.config import SynthConfig
from synth.demo.support_tickets import demo_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_is_valid() -> None:
    task = demo_config().task("rare_support_intents")
    assert task.backend.kind == "substitute" and task.review.auto_approve
    assert (task.entity, task.filters.field) == ("orders", "note")


def test_unknown_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "lake: {root: lake}\nsources: {}\nsynth:\n  tasks:\n    - name: t\n      dataset: d\n"
        "      text_field: text\n      label_field: y\n      backend: {kind: substitute, sed: 1}\n",
    )
    # The field as the file spells it: pydantic's union tag (substitute) is left out.
    with pytest.raises(ConfigError, match=r"pipeline.yaml:9: synth.tasks\[0\].backend.sed"):
        load_synth_config(path)


def test_lake_root_is_anchored(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "lake: {root: lake}\nsynth:\n  tasks:\n    - name: t\n"
        "      dataset: d\n      text_field: text\n      label_field: y\n",
    )
    lake, synth = load_synth_config(path)
    assert lake.root == (tmp_path / "lake").resolve()
    assert synth.tasks[0].backend.kind == "substitute"


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"name": "t", "dataset": "d", "label_field": "y"}, "needs text_field"),
        (
            {
                "name": "t",
                "dataset": "d",
                "label_field": "y",
                "backend": {
                    "kind": "dp-tabular",
                    "columns": [{"name": "age", "kind": "numeric", "min": 0, "max": 99}],
                    "budget": {"privacy_unit": "p", "epsilon": 1, "delta": 1e-5},
                },
            },
            "label_field must be one of backend.columns",
        ),
        (
            {
                "name": "t",
                "dataset": "d",
                "label_field": "y",
                "backend": {
                    "kind": "dp-tabular",
                    "columns": [{"name": "y", "kind": "numeric", "min": 5, "max": 1}],
                    "budget": {"privacy_unit": "p", "epsilon": 1, "delta": 1e-5},
                },
            },
            "min < max",
        ),
    ],
)
def test_task_shape_is_checked(task: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig.model_validate({"tasks": [task]})


def test_duplicate_task_names_and_unknown_task() -> None:
    task = {"name": "t", "dataset": "d", "text_field": "x", "label_field": "y"}
    with pytest.raises(ValueError, match="unique"):
        SynthConfig.model_validate({"tasks": [task, task]})
    with pytest.raises(ConfigError, match="no synth task 'u'"):
        SynthConfig.model_validate({"tasks": [task]}).task("u")


def test_missing_synth_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no synth section"):
        load_synth_config(_write(tmp_path, "lake: {root: lake}\n"))
