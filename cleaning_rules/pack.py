"""One rule pack file: its schema, how it is read and checked, and its compiled rules.

A pack is read once, validated at the edge (pydantic for shapes, then the checks that span
rules), and every problem is reported as ``file:line: field: message``. Inward, the engine only
sees :class:`LoadedPack` with typed specs and compiled rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from cleaning_rules.actions import ACTIONS
from cleaning_rules.errors import PackIssue, RulePackError
from cleaning_rules.rules import CompiledRule, RuleSpec, StrictModel
from pipelines.yaml_models import LineMap, Loc, field_label, read_yaml

PACK_NAME = r"^[a-z][a-z0-9_]*$"
ANY_ENTITY = "*"
# The pack format as JSON Schema, for editors (see README.md); `steward rules schema --write`.
SCHEMA_PATH = Path(__file__).resolve().parent / "pack.schema.json"

AnyRule = Annotated[reduce(or_, ACTIONS.values()), Field(discriminator="action")]


class Selector(StrictModel):
    """Which fields of which entity a pack cleans; ``entity: "*"`` matches every entity."""

    entity: str = Field(min_length=1, description='An entity name, or "*" for every entity.')
    fields: list[str] = Field(min_length=1, description="The fields the pack may change.")

    def matches(self, entity: str) -> bool:
        """Whether this selector applies to records of ``entity``."""
        return self.entity in (entity, ANY_ENTITY)


class PackSpec(StrictModel):
    """A rule pack as written in ``packs/<pack>.yaml``.

    Packs run in ascending ``order`` (then by name), so a pack's position is part of its
    content: the rules version, a hash of the contents, also fixes the order.
    """

    pack: str = Field(pattern=PACK_NAME, description="The pack's name: its file's name.")
    version: str = Field(min_length=1, description='The steward\'s version string ("1.0.0").')
    owner: str = Field(min_length=1, description="Who answers for the pack.")
    description: str = Field(min_length=1, description="What the pack cleans and why.")
    order: int = Field(
        default=100, description="Packs run in ascending order, then by name (common: 10)."
    )
    applies_to: list[Selector] = Field(
        min_length=1, description="The entities and fields the pack cleans."
    )
    rules: list[AnyRule] = Field(  # type: ignore[valid-type]
        min_length=1, description="Run in the order written, each on every field it applies to."
    )

    def all_fields(self) -> set[str]:
        """Every field named by ``applies_to``, whatever the entity."""
        return {field for selector in self.applies_to for field in selector.fields}


@dataclass(frozen=True, eq=False)
class LoadedPack:
    """A validated pack, its compiled rules (same order as ``spec.rules``) and source lines."""

    path: Path
    spec: PackSpec
    lines: LineMap
    compiled: tuple[CompiledRule, ...]

    @property
    def name(self) -> str:
        return self.spec.pack

    @property
    def rules(self) -> list[RuleSpec]:
        return list(self.spec.rules)

    def line_of(self, *loc: str | int) -> int:
        """The line of ``loc`` in the pack file, e.g. ``line_of("rules", 2, "examples", 0)``."""
        return self.lines.line_for(loc)

    def __reduce__(self) -> tuple[object, ...]:
        # Compiled rules hold closures, which do not pickle: a pack travels as its validated
        # spec and compiles again on arrival.
        return (_compiled_pack, (self.path, self.spec, self.lines))

    def fingerprint(self) -> Any:
        """The pack's content as plain JSON values, without examples (they are tests, they do
        not change an output row) and without defaults (adding an optional field to the
        format must not change every rules version)."""
        return self.spec.model_dump(
            mode="json", exclude_defaults=True, exclude={"rules": {"__all__": {"examples"}}}
        )


def pack_json_schema() -> dict[str, Any]:
    """The JSON Schema of the pack format, generated from the models above (what
    ``pack.schema.json`` holds; a test keeps the two equal). It checks shapes; what only code
    can check (a pattern compiles, examples pass, ids are unique) is left to the loader."""
    schema = PackSpec.model_json_schema(by_alias=True)
    return {
        # Draft 7: the newest the YAML language server (the editors' common engine) reads.
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Steward cleaning rule pack",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def pack_json_schema_text() -> str:
    """:func:`pack_json_schema` as the text of ``pack.schema.json``."""
    return json.dumps(pack_json_schema(), indent=2, ensure_ascii=False) + "\n"


def load_pack_file(path: Path) -> LoadedPack:
    """Read, validate and compile one pack file; any problem raises :class:`RulePackError`."""
    document = read_yaml(path, RulePackError)
    try:
        spec = PackSpec.model_validate(document.data)
    except ValidationError as exc:
        raise RulePackError.from_issues(_validation_issues(exc, path, document.lines)) from exc
    issues = [
        _issue(path, document.lines, loc, message) for loc, message in _cross_checks(spec, path)
    ]
    if issues:
        raise RulePackError.from_issues(sorted(issues, key=lambda issue: issue.line))
    return _compiled_pack(path, spec, document.lines)


def _compiled_pack(path: Path, spec: PackSpec, lines: LineMap) -> LoadedPack:
    return LoadedPack(path, spec, lines, tuple(rule.build() for rule in spec.rules))


def _cross_checks(spec: PackSpec, path: Path) -> list[tuple[Loc, str]]:
    """Checks that span fields or rules, which pydantic models cannot express locally."""
    problems: list[tuple[Loc, str]] = []
    if spec.pack != path.stem:
        problems.append((("pack",), f"must match the file name {path.stem!r}"))
    pack_fields = spec.all_fields()
    first_index: dict[str, int] = {}
    for index, rule in enumerate(spec.rules):
        if not rule.id.startswith(f"{spec.pack}."):
            problems.append((("rules", index, "id"), f"must start with '{spec.pack}.'"))
        if rule.id in first_index:
            problems.append(
                (("rules", index, "id"), f"duplicate rule id (also rules[{first_index[rule.id]}])")
            )
        first_index.setdefault(rule.id, index)
        unknown = sorted(set(rule.fields or ()) - pack_fields)
        if unknown:
            problems.append(
                (
                    ("rules", index, "fields"),
                    f"{', '.join(unknown)} not among the pack's applies_to fields "
                    f"({', '.join(sorted(pack_fields))})",
                )
            )
    return problems


def _validation_issues(exc: ValidationError, path: Path, lines: LineMap) -> list[PackIssue]:
    issues: list[PackIssue] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "action")
            known = ", ".join(sorted(ACTIONS))
            tag = (error.get("ctx") or {}).get("tag")
            message = (
                f"unknown action {tag!r} (known: {known})" if tag else f"missing (one of: {known})"
            )
        issues.append(_issue(path, lines, loc, message))
    return sorted(issues, key=lambda issue: issue.line)


def _issue(path: Path, lines: LineMap, loc: Loc, message: str) -> PackIssue:
    """A problem at ``loc`` of the pack file, with its line, column and field label."""
    return PackIssue(path, lines.line_for(loc), _label(loc), message, lines.column_for(loc))


def _label(loc: Loc) -> str:
    """``rules[3].pattern`` for ``("rules", 3, "replace", "pattern")``: pydantic's union tag
    (the action name after a rule index) left out."""
    return field_label(
        [e for i, e in enumerate(loc) if not (i and isinstance(loc[i - 1], int) and e in ACTIONS)]
    )
