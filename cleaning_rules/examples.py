"""Run the golden examples written beside each rule, and report the ones that fail.

Each example runs through its own rule alone, so a failure names exactly one rule. A text
rule is also run a second time on its expected output, which must come back unchanged: a rule
that keeps rewriting its own output (``5mg`` → ``5mgmg``) is a bug even when the first example
passes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cleaning_rules.engine import DEFAULT_TIMEOUT_S, available_packs, load_packs
from cleaning_rules.pack import LoadedPack
from cleaning_rules.rules import CompiledRule, ExampleSpec, ExtractionRule, TextRule, Verdict

NOTHING = "<nothing>"  # what an extract example expects, or a rule gives, when nothing is found


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """One example that a rule does not reproduce: where it is, what was expected and got."""

    rule_id: str
    path: Path
    line: int
    problem: str
    text: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.rule_id}: {self.problem}: "
            f"in={self.text!r} expected={self.expected!r} got={self.actual!r}"
        )


def check_rule(
    pack: LoadedPack, index: int, *, timeout: float = DEFAULT_TIMEOUT_S
) -> list[ExampleFailure]:
    """Run every example of rule ``index`` of ``pack``; return the failures (empty: all pass)."""
    spec = pack.spec.rules[index]
    rule = pack.compiled[index]
    failures: list[ExampleFailure] = []
    for number, example in enumerate(spec.examples):
        line = pack.line_of("rules", index, "examples", number)
        problem = _check_example(rule, example, timeout)
        if problem is not None:
            what, expected, actual = problem
            failures.append(
                ExampleFailure(rule.rule_id, pack.path, line, what, example.text, expected, actual)
            )
    return failures


def check_packs(
    names: Iterable[str] | None = None,
    pack_dir: Path | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[ExampleFailure]:
    """Run the examples of every rule of the named packs (default: every pack in ``pack_dir``).

    A pack that does not load raises :class:`~cleaning_rules.errors.RulePackError`.
    """
    ruleset = load_packs(available_packs(pack_dir) if names is None else names, pack_dir)
    return [
        failure
        for pack in ruleset.packs
        for index in range(len(pack.compiled))
        for failure in check_rule(pack, index, timeout=timeout)
    ]


def _check_example(
    rule: CompiledRule, example: ExampleSpec, timeout: float
) -> tuple[str, str, str] | None:
    """None when ``rule`` reproduces ``example``, else (problem, expected, actual)."""
    try:
        if isinstance(rule, TextRule):
            actual = rule.transform(example.text, timeout)
            if actual != example.expected_text:
                return "wrong output", example.expected_text, actual
            again = rule.transform(actual, timeout)
            if again != actual:
                return "changes its own output again", actual, again
            return None
        if isinstance(rule, ExtractionRule):
            found = rule.extract(example.text, timeout)
            if found != example.extracted:
                return "wrong value extracted", _extracted(example.extracted), _extracted(found)
            return None
        verdict: Verdict = rule.verdict if rule.matches(example.text, timeout) else "keep"
    except TimeoutError:
        return f"timed out after {timeout}s", _expected(rule, example), "timeout"
    if verdict != example.expected_verdict:
        return "wrong verdict", example.expected_verdict, verdict
    return None


def _expected(rule: CompiledRule, example: ExampleSpec) -> str:
    if isinstance(rule, ExtractionRule):
        return _extracted(example.extracted)
    return example.expected_text if isinstance(rule, TextRule) else example.expected_verdict


def _extracted(value: str | None) -> str:
    return NOTHING if value is None else value
