"""The JSON Schema of the pack format: generated from the models, committed, used by editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from cleaning_rules.engine import DEFAULT_PACK_DIR, available_packs
from cleaning_rules.errors import RulePackError
from cleaning_rules.pack import SCHEMA_PATH, load_pack_file, pack_json_schema_text
from pipelines.cli import app
from pipelines.yaml_models import read_yaml

MODELINE = "# yaml-language-server: $schema=../pack.schema.json"
VALIDATOR = jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_committed_schema_is_the_generated_one() -> None:
    # Fails when a model changes without `steward rules schema --write`.
    assert SCHEMA_PATH.read_text(encoding="utf-8") == pack_json_schema_text()


def test_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft7Validator.check_schema(VALIDATOR.schema)


@pytest.mark.parametrize("name", available_packs())
def test_shipped_pack_validates_and_names_the_schema(name: str) -> None:
    path = DEFAULT_PACK_DIR / f"{name}.yaml"
    errors = list(VALIDATOR.iter_errors(read_yaml(path, RulePackError).data))
    assert not errors, [error.message for error in errors]
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == MODELINE
    assert (path.parent / first_line.split("$schema=")[1]).resolve() == SCHEMA_PATH


def _pack(**rule: Any) -> dict[str, Any]:
    base = {
        "id": "demo.rule",
        "description": "a rule",
        "action": "replace",
        "pattern": "x",
        "replacement": "y",
        "examples": [{"in": "x", "out": "y"}, {"in": "z"}],
    }
    return {
        "pack": "demo",
        "version": "1",
        "owner": "tests",
        "description": "a pack",
        "applies_to": [{"entity": "notes", "fields": ["text"]}],
        "rules": [{**base, **rule}],
    }


def test_a_valid_pack_passes_both_checks(tmp_path: Path) -> None:
    document = _pack()
    assert list(VALIDATOR.iter_errors(document)) == []
    path = tmp_path / "demo.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    assert load_pack_file(path).name == "demo"


@pytest.mark.parametrize(
    "rule",
    [
        {"replacment": "y"},  # a typo: unknown keys are refused
        {"action": "rewrite"},  # no such action
        {"action": "map", "table": {"a": "b"}},  # a map rule has no pattern
        {"action": "normalize", "form": "nfkd"},  # no such form
        {"examples": []},  # at least one example
        {"flags": ["GLOBAL"]},  # no such flag
        {"id": "Demo.Rule"},
        {"action": "quarantine"},  # a quarantine rule needs a reason
    ],
    ids=lambda rule: next(iter(rule)) + "=" + str(next(iter(rule.values()))),
)
def test_schema_and_loader_refuse_the_same_mistakes(tmp_path: Path, rule: dict[str, Any]) -> None:
    document = _pack(**rule)
    if "replacment" not in rule and rule.get("action") in ("map", "normalize", "quarantine"):
        document["rules"][0].pop("replacement")
    assert list(VALIDATOR.iter_errors(document)), "the schema accepts it"
    path = tmp_path / "demo.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(RulePackError):
        load_pack_file(path)


def test_cli_prints_the_schema() -> None:
    result = CliRunner().invoke(app, ["rules", "schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout == SCHEMA_PATH.read_text(encoding="utf-8")
