"""YAML files people edit, read with the line of every key, validated into pydantic models.

Config is data validated at the edge: this is the one place YAML becomes typed objects
(``pipeline.yaml``, rule packs, privacy policies, contracts). The document is composed into
nodes first and walked once to record the line of every key and item and to refuse duplicate
keys (PyYAML would silently keep the last), then constructed into plain values. Every problem
is reported as ``file:line: field: message``, so a person knows where to edit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipelines.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
E = TypeVar("E", bound="YamlError")

Loc = tuple[str | int, ...]

# PyYAML's merge key: its pairs are merged by the constructor, not duplicates of the mapping.
_MERGE_KEY = "<<"
# libyaml parses about ten times faster than the pure-Python parser; both give node marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class YamlIssue:
    """One problem in a file: where it is (``path:line``, and ``:column`` when known), which
    field, and why."""

    path: Path | str
    line: int
    field: str
    message: str
    column: int | None = None

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        column = "" if self.column is None else f":{self.column}"
        return f"{self.path}:{self.line}{column}:{field} {self.message}"


class YamlError(ConfigError):
    """A YAML file is unreadable or invalid; ``issues`` lists every problem found, the message
    shows the first and counts the rest."""

    def __init__(
        self, message: str, *, issues: tuple[YamlIssue, ...] = (), stage: str | None = None
    ):
        super().__init__(message, stage=stage)
        self.issues = issues

    @classmethod
    def from_issues(cls: type[E], issues: Sequence[YamlIssue]) -> E:
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        return cls(f"{issues[0]}{more}", issues=tuple(issues))


@dataclass(frozen=True)
class LineMap:
    """Line (1-based) of every mapping key and sequence item, addressed by its path, and its
    column (1-based)."""

    lines: dict[Loc, int]
    columns: dict[Loc, int]

    def document_loc(self, loc: Sequence[object]) -> Loc:
        """The deepest prefix of ``loc`` that is in the document. Elements that are not part
        of the document (a pydantic union tag, a missing field) are skipped."""
        found: Loc = ()
        for element in loc:
            key: str | int = element if isinstance(element, int) else str(element)
            if (*found, key) in self.lines:
                found = (*found, key)
        return found

    def line_for(self, loc: Sequence[object]) -> int:
        """The line of ``loc``; a missing field resolves to the mapping that lacks it."""
        return self.lines.get(self.document_loc(loc), 1)

    def column_for(self, loc: Sequence[object]) -> int | None:
        """The column of ``loc`` (as ``line_for`` finds it; None when not recorded)."""
        return self.columns.get(self.document_loc(loc))


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its plain value and the line of each path in it."""

    path: Path | str
    data: object
    lines: LineMap


def parse_yaml(text: str, source: Path | str, error: type[E] = YamlError) -> YamlDocument:  # type: ignore[assignment]
    """Parse one YAML document; syntax errors, duplicate keys and an empty document raise
    ``error`` naming ``source:line``."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise error.from_issues([YamlIssue(source, 1, "", "the file is empty")])
        where = LineMap({(): node.start_mark.line + 1}, {(): node.start_mark.column + 1})
        issues: list[YamlIssue] = []
        _walk(loader, node, (), where, issues, source)
        if issues:
            raise error.from_issues(issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        column = mark.column + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        issue = YamlIssue(source, line, "", f"invalid YAML: {problem}", column)
        raise error.from_issues([issue]) from exc
    except yaml.YAMLError as exc:
        raise error.from_issues([YamlIssue(source, 1, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return YamlDocument(source, data, where)


def read_yaml(path: Path, error: type[E] = YamlError) -> YamlDocument:  # type: ignore[assignment]
    """``parse_yaml`` of a file; an unreadable file raises ``error`` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error.from_issues([YamlIssue(path, 1, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error.from_issues([YamlIssue(path, 1, "", f"cannot read: {exc}")]) from None
    return parse_yaml(text, path, error)


def _walk(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    loc: Loc,
    where: LineMap,
    issues: list[YamlIssue],
    source: Path | str,
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            column = key_node.start_mark.column + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == _MERGE_KEY:
                continue
            key = str(loader.construct_object(key_node, deep=True))
            if key in seen:
                label = field_label((*loc, key))
                message = f"duplicate key (first set on line {seen[key]})"
                issues.append(YamlIssue(source, line, label, message, column))
                continue
            seen[key] = line
            where.lines[(*loc, key)] = line
            where.columns[(*loc, key)] = column
            _walk(loader, value_node, (*loc, key), where, issues, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            where.lines[(*loc, index)] = item.start_mark.line + 1
            where.columns[(*loc, index)] = item.start_mark.column + 1
            _walk(loader, item, (*loc, index), where, issues, source)


def validation_issues(
    exc: ValidationError, document: YamlDocument, *, keep_tags: bool = False
) -> list[YamlIssue]:
    """One issue per pydantic error, at its line, with the field as the file spells it
    (union tags left out unless ``keep_tags``)."""
    issues = []
    for problem in exc.errors(include_url=False):
        loc = [part for part in problem["loc"] if isinstance(part, str | int)]
        path = loc if keep_tags else _without_tags(loc, document.lines)
        field = field_label(path) or "(top level)"
        message = problem["msg"].removeprefix("Value error, ")
        issues.append(YamlIssue(document.path, document.lines.line_for(loc), field, message))
    return sorted(issues, key=lambda issue: issue.line)


def field_label(loc: Sequence[str | int]) -> str:
    """``sources.erp.tables[0].name``: keys dotted, list indexes in brackets."""
    label = ""
    for element in loc:
        if isinstance(element, int):
            label += f"[{element}]"
        else:
            label += f".{element}" if label else str(element)
    return label


def _without_tags(loc: Sequence[str | int], lines: LineMap) -> list[str | int]:
    """``sources.erp.jdbc.user`` is ``sources.erp.user`` in the file: an inner element the
    document does not have is a union tag. The last element stays (it may be missing)."""
    kept: list[str | int] = []
    for position, part in enumerate(loc):
        inner = position < len(loc) - 1
        if inner and isinstance(part, str) and (*kept, part) not in lines.lines:
            continue
        kept.append(part)
    return kept


def _validated(document: YamlDocument, model: type[M]) -> M:
    try:
        return model.model_validate(document.data)
    except ValidationError as exc:
        raise YamlError.from_issues(validation_issues(exc, document)) from None


def parse_yaml_model(text: str, model: type[M], source: str) -> M:
    """Validate YAML ``text`` as ``model``; ``source`` names the file in error messages."""
    return _validated(parse_yaml(text, source), model)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model``; every problem is a ``YamlError``
    (a ``ConfigError``) naming ``file:line: field``."""
    return _validated(read_yaml(path), model)
