"""Read a YAML file keeping the line of every key, so validation errors can say ``file:line``.

PyYAML's plain ``safe_load`` forgets where values came from and silently keeps the last of two
equal keys; a steward who writes ``pattern:`` twice would lose one without a word. Here the
document is composed into nodes first, walked once to record lines and refuse duplicate keys,
and only then constructed into plain Python values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from cleaning_rules.errors import PackIssue, RulePackError

Loc = tuple[str | int, ...]

# PyYAML's merge key: its pairs are merged by the constructor, not duplicates of the mapping.
_MERGE_KEY = "<<"
# libyaml parses about ten times faster than the pure-Python parser; both give node marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class LineMap:
    """Line (1-based) of every mapping key and sequence item, addressed by its path."""

    lines: dict[Loc, int]

    def line_for(self, loc: Sequence[object]) -> int:
        """The line of the deepest prefix of ``loc`` that is in the document.

        Elements that are not part of the document (a pydantic union tag, a missing field)
        are skipped, so a missing field resolves to the line of the mapping that lacks it.
        """
        found: Loc = ()
        for element in loc:
            key: str | int = element if isinstance(element, int) else str(element)
            if (*found, key) in self.lines:
                found = (*found, key)
        return self.lines.get(found, 1)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML file: its plain value and the line of each path in it."""

    path: Path
    data: object
    lines: LineMap


def read_yaml(path: Path) -> YamlDocument:
    """Parse one YAML document from ``path``; syntax errors and duplicate keys raise
    :class:`RulePackError` naming ``path:line``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulePackError.from_issues([PackIssue(path, 1, "", f"cannot read: {exc}")]) from exc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise RulePackError.from_issues([PackIssue(path, 1, "", "the file is empty")])
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        issues: list[PackIssue] = []
        _walk(loader, node, (), lines, issues, path)
        if issues:
            raise RulePackError.from_issues(issues)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise RulePackError.from_issues([PackIssue(path, line, "", problem)]) from exc
    except yaml.YAMLError as exc:
        raise RulePackError.from_issues([PackIssue(path, 1, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return YamlDocument(path, data, LineMap(lines))


def _walk(
    loader: yaml.SafeLoader | yaml.CSafeLoader,
    node: yaml.Node,
    loc: Loc,
    lines: dict[Loc, int],
    issues: list[PackIssue],
    path: Path,
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == _MERGE_KEY:
                continue
            key = str(loader.construct_object(key_node, deep=True))
            if key in seen:
                where = "".join(f"[{e}]" if isinstance(e, int) else f".{e}" for e in (*loc, key))
                issues.append(
                    PackIssue(
                        path,
                        line,
                        where.lstrip("."),
                        f"duplicate key (first set on line {seen[key]})",
                    )
                )
                continue
            seen[key] = line
            lines[(*loc, key)] = line
            _walk(loader, value_node, (*loc, key), lines, issues, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            _walk(loader, item, (*loc, index), lines, issues, path)
