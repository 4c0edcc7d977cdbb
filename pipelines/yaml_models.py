"""Load a YAML file into a pydantic model, reporting errors as ``file:line: field: message``.

Config is data validated at the edge: this is the one place YAML becomes typed objects. The
YAML is composed into nodes first so every validation error can point at the line a person
has to edit, not at a Python traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pipelines.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

_Loc = tuple[str | int, ...]


def _line_index(
    node: yaml.Node, path: _Loc = (), index: dict[_Loc, int] | None = None
) -> dict[_Loc, int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    index = {} if index is None else index
    index[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = (*path, key_node.value)
            index[key_path] = key_node.start_mark.line + 1
            _line_index(value_node, key_path, index)
            index[key_path] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, (*path, i), index)
    return index


def _nearest_line(index: dict[_Loc, int], loc: Sequence[str | int]) -> int:
    """The line of the deepest known prefix of ``loc`` (a missing field points at its parent)."""
    for end in range(len(loc), -1, -1):
        line = index.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


def _document_loc(loc: Sequence[str | int], index: dict[_Loc, int]) -> list[str | int]:
    """``loc`` without the union tags pydantic puts in it (``sources.erp.jdbc.user`` is
    ``sources.erp.user`` in the file): an inner element the document does not have is a tag."""
    kept: list[str | int] = []
    for position, part in enumerate(loc):
        inner = position < len(loc) - 1
        if inner and isinstance(part, str) and (*kept, part) not in index:
            continue
        kept.append(part)
    return kept


def format_validation_error(source: str, error: ValidationError, index: dict[_Loc, int]) -> str:
    """One line per problem: ``file:line: dotted.field: message``."""
    lines = []
    for problem in error.errors():
        loc = _document_loc([p for p in problem["loc"] if isinstance(p, str | int)], index)
        field = ".".join(str(part) for part in loc) or "(top level)"
        lines.append(f"{source}:{_nearest_line(index, loc)}: {field}: {problem['msg']}")
    return "\n".join(lines)


def parse_yaml_model(text: str, model: type[M], source: str) -> M:
    """Validate YAML ``text`` as ``model``; ``source`` names the file in error messages."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{source}:{line}: invalid YAML: {exc.problem or exc}") from None
    if node is None or data is None:
        raise ConfigError(f"{source}:1: the file is empty")
    index = _line_index(node)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, index)) from None


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` and validate it as ``model`` (see ``parse_yaml_model``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_yaml_model(text, model, str(path))
