"""Lint a folder of rule packs: what a steward fixes before a pack ships.

Errors stop a pack from shipping: a file that does not load (every schema or YAML problem, with
``file:line``, duplicate rule ids among them), an example its rule does not reproduce.
Warnings are risks a person should look at: a pattern with nested quantifiers that can
backtrack catastrophically, and a rule set that changes its own output when applied again to
an example. The checks are static or run on the examples only; nothing here reads data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cleaning_rules.engine import DEFAULT_TIMEOUT_S, RuleSet
from cleaning_rules.errors import RulePackError
from cleaning_rules.examples import check_rule
from cleaning_rules.pack import LoadedPack, load_pack_file

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint problem: where (``path:line``), which rule when known, what kind, and why."""

    severity: Severity
    code: str
    path: str
    line: int
    message: str
    rule_id: str | None = None

    def __str__(self) -> str:
        rule = f" {self.rule_id}:" if self.rule_id else ""
        return f"{self.path}:{self.line}:{rule} {self.message} [{self.code}]"

    def as_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class LintReport:
    """Every finding of one lint run, errors and warnings apart, in file and line order."""

    packs: tuple[str, ...]
    errors: tuple[Finding, ...] = field(default=())
    warnings: tuple[Finding, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing stops the packs from shipping (warnings allowed)."""
        return not self.errors

    def as_json(self) -> dict[str, object]:
        return {
            "packs": list(self.packs),
            "ok": self.ok,
            "errors": [f.as_json() for f in self.errors],
            "warnings": [f.as_json() for f in self.warnings],
        }


def pack_files(path: Path) -> list[Path]:
    """The pack files ``path`` names: itself when it is a file, else its ``*.yaml``, sorted."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RulePackError(f"{path}: no such pack file or folder")
    return sorted(path.glob("*.yaml"))


def lint_packs(path: Path, *, timeout: float = DEFAULT_TIMEOUT_S) -> LintReport:
    """Lint the pack file ``path``, or every ``*.yaml`` pack in the folder ``path``."""
    findings: list[Finding] = []
    loaded: list[LoadedPack] = []
    for file in pack_files(path):
        try:
            loaded.append(load_pack_file(file))
        except RulePackError as exc:
            issues = exc.issues or ()
            if not issues:
                findings.append(Finding("error", "load", str(file), 1, exc.message))
            for issue in issues:
                label = f"{issue.field}: " if issue.field else ""
                findings.append(
                    Finding("error", "schema", str(issue.path), issue.line, label + issue.message)
                )
    for pack in loaded:
        for index, spec in enumerate(pack.spec.rules):
            findings.extend(_pattern_findings(pack, index))
            findings.extend(
                Finding(
                    "error",
                    "example",
                    str(failure.path),
                    failure.line,
                    f"{failure.problem}: in={failure.text!r} "
                    f"expected={failure.expected!r} got={failure.actual!r}",
                    spec.id,
                )
                for failure in check_rule(pack, index, timeout=timeout)
            )
    # Rule ids start with their pack's name and a pack's name is its file's, so ids cannot
    # clash across the files of one folder; a clash within a pack is a schema error above.
    findings.extend(_idempotence_findings(RuleSet(loaded, timeout=timeout)))
    ordered = sorted(findings, key=lambda f: (f.path, f.line, f.code))
    return LintReport(
        tuple(pack.name for pack in loaded),
        tuple(f for f in ordered if f.severity == "error"),
        tuple(f for f in ordered if f.severity == "warning"),
    )


def _pattern_findings(pack: LoadedPack, index: int) -> Iterator[Finding]:
    spec = pack.spec.rules[index]
    if spec.pattern is None:
        return
    for problem in backtracking_risks(spec.pattern, verbose="VERBOSE" in spec.flags):
        yield Finding(
            "warning",
            "backtracking",
            str(pack.path),
            pack.line_of("rules", index, "pattern"),
            f"pattern at risk of catastrophic backtracking: {problem}",
            spec.id,
        )


def _idempotence_findings(ruleset: RuleSet) -> Iterator[Finding]:
    """Apply the whole rule set to each example twice; a second pass that changes the text
    again is a warning on the example's rule (other packs' rules can be the cause)."""
    for pack in ruleset.packs:
        for index, spec in enumerate(pack.spec.rules):
            target = _entity_field(pack, spec.fields)
            if target is None:
                continue
            entity, name = target
            for number, example in enumerate(spec.examples):
                once = ruleset.apply(entity, {name: example.text})
                if once.verdict != "keep":
                    continue
                twice = ruleset.apply(entity, once.record)
                if twice.verdict == "keep" and twice.record == once.record:
                    continue
                after = twice.record.get(name) if twice.verdict == "keep" else twice.verdict
                yield Finding(
                    "warning",
                    "idempotence",
                    str(pack.path),
                    pack.line_of("rules", index, "examples", number),
                    f"not idempotent on {example.text!r}: once {once.record[name]!r}, "
                    f"twice {after!r} (second pass fired: "
                    f"{', '.join(twice.fired or (twice.rule_id or '?',))})",
                    spec.id,
                )


def _entity_field(pack: LoadedPack, fields: list[str] | None) -> tuple[str, str] | None:
    """An (entity, field) the rule runs on, to apply the rule set as a pipeline would."""
    for selector in pack.spec.applies_to:
        for name in selector.fields:
            if fields is None or name in fields:
                # "*" matches itself, so a wildcard selector is exercised as written.
                return selector.entity, name
    return None


def backtracking_risks(pattern: str, *, verbose: bool = False) -> list[str]:
    """Static signs of exponential backtracking in ``pattern`` (regex module syntax).

    Flags a group repeated without bound (``*``, ``+``, ``{n,}``) that itself contains an
    unbounded repeat (``(a+)+``, ``(a*)*``, ``(\\w+\\s?)*``), or alternatives that are the
    same text or repeats of one another (``(a|a)*``, ``(a|aa)+``). Possessive quantifiers
    (``++``) and atomic groups (``(?>…)``) cannot backtrack and are not flagged. It is a
    heuristic: it finds the classic shapes, not every slow pattern.
    """
    risks: list[str] = []
    # One frame per open group: its start, whether it is atomic, whether it holds an
    # unbounded repeat, and its alternatives as written.
    stack: list[tuple[int, bool, bool, list[str]]] = [(0, False, False, [""])]
    i = 0
    n = len(pattern)
    while i < n:
        char = pattern[i]
        start = i
        if verbose and char.isspace():
            i += 1
            continue
        if verbose and char == "#":
            while i < n and pattern[i] != "\n":
                i += 1
            continue
        if char == "\\":
            i = _skip_escape(pattern, i)
            token = pattern[start:i]
        elif char == "[":
            i = _skip_class(pattern, i)
            token = pattern[start:i]
        elif char == "(":
            atomic = pattern.startswith("(?>", i)
            if pattern.startswith("(?#", i):
                i = pattern.find(")", i) + 1 or n
                continue
            i, opens = _skip_group_prefix(pattern, i)
            if opens:
                stack.append((start, atomic, False, [""]))
                continue
            token = pattern[start:i]
        elif char == ")" and len(stack) > 1:
            open_at, atomic, inner, branches = stack.pop()
            i += 1
            quantifier_end = _quantifier_end(pattern, i)
            quantifier = pattern[i:quantifier_end]
            unbounded, possessive = _quantifier_kind(quantifier)
            group = pattern[open_at:i]
            if unbounded and not possessive and not atomic:
                if inner:
                    risks.append(f"nested quantifiers in {group}{quantifier}")
                elif _overlapping(branches):
                    risks.append(f"overlapping alternatives in {group}{quantifier}")
            i = quantifier_end
            _append(stack, group + quantifier, (inner or unbounded) and not atomic)
            continue
        elif char == "|":
            stack[-1][3].append("")
            i += 1
            continue
        else:
            i += 1
            token = char
        quantifier_end = _quantifier_end(pattern, i)
        unbounded, possessive = _quantifier_kind(pattern[i:quantifier_end])
        _append(stack, token + pattern[i:quantifier_end], unbounded and not possessive)
        i = quantifier_end
    return risks


def _append(stack: list[tuple[int, bool, bool, list[str]]], text: str, unbounded: bool) -> None:
    open_at, atomic, inner, branches = stack[-1]
    branches[-1] += text
    stack[-1] = (open_at, atomic, inner or unbounded, branches)


def _overlapping(branches: list[str]) -> bool:
    """Two alternatives that can split the same text in several ways: equal, or one a repeat
    of the other (``a`` and ``aa``)."""
    if len(branches) < 2:
        return False
    for x, a in enumerate(branches):
        for b in branches[x + 1 :]:
            short, long = sorted((a, b), key=len)
            if short and len(long) % len(short) == 0 and short * (len(long) // len(short)) == long:
                return True
    return False


def _skip_escape(pattern: str, i: int) -> int:
    """The index after the escape at ``i`` (``\\d``, ``\\p{Han}``, ``\\x{41}``, ``\\N{…}``)."""
    i += 2
    if i <= len(pattern) and pattern[i - 1] in "pPNxu" and pattern.startswith("{", i):
        close = pattern.find("}", i)
        return len(pattern) if close < 0 else close + 1
    return i


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i`` (nested sets included)."""
    depth = 0
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a ']' first in a class is a literal
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _skip_escape(pattern, i)
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            if depth == 0:
                return i + 1
            depth -= 1
        i += 1
    return i


def _skip_group_prefix(pattern: str, i: int) -> tuple[int, bool]:
    """The index after a group's opening (``(``, ``(?:``, ``(?P<name>``, ``(?<=``…) and True;
    or the index after a whole construct that opens no group (``(?i)``, ``(?P=name)``) and
    False."""
    if not pattern.startswith("(?", i):
        return i + 1, True
    if pattern.startswith(("(?P<", "(?<"), i) and not pattern.startswith(("(?<=", "(?<!"), i):
        close = pattern.find(">", i)
        return (len(pattern) if close < 0 else close + 1), True
    for prefix in ("(?<=", "(?<!", "(?:", "(?=", "(?!", "(?>", "(?|"):
        if pattern.startswith(prefix, i):
            return i + len(prefix), True
    # Inline flags, (?i) or (?i:…), and references such as (?P=name).
    j = i + 2
    while j < len(pattern) and pattern[j] not in ":)":
        j += 1
    return j + 1, j < len(pattern) and pattern[j] == ":"


def _quantifier_end(pattern: str, i: int) -> int:
    """The index after the quantifier at ``i`` (with its lazy ``?`` or possessive ``+``)."""
    if i >= len(pattern):
        return i
    if pattern[i] in "*+?":
        end = i + 1
    elif pattern[i] == "{":
        close = pattern.find("}", i)
        body = pattern[i + 1 : close] if close > 0 else ""
        if not body or not all(c.isdigit() or c == "," for c in body):
            return i  # a literal brace
        end = close + 1
    else:
        return i
    if end < len(pattern) and pattern[end] in "?+":
        end += 1
    return end


def _quantifier_kind(quantifier: str) -> tuple[bool, bool]:
    """(unbounded, possessive) for a quantifier as written; ``""`` is neither."""
    if not quantifier:
        return False, False
    possessive = len(quantifier) > 1 and quantifier.endswith("+")
    core = quantifier.rstrip("?+") if quantifier[0] == "{" else quantifier[0]
    if core in ("*", "+"):
        return True, possessive
    if core.startswith("{"):
        body = core.strip("{}")
        return body.endswith(","), possessive
    return False, possessive
