"""Lint a folder of rule packs: what a steward fixes before a pack ships.

Errors stop a pack from shipping: a file that does not load (every schema or YAML problem, with
``file:line``, duplicate rule ids among them), an example its rule does not reproduce.
Warnings are risks a person should look at: a pattern with nested quantifiers that can
backtrack catastrophically, a rule shadowed by earlier rules (it acts on its own examples
alone, and never once the rules before it ran), and a rule set that changes its own output
when applied again to an example. The checks are static or run on the examples only; nothing
here reads data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from cleaning_rules.backtracking import backtracking_risks
from cleaning_rules.engine import DEFAULT_TIMEOUT_S, RuleSet
from cleaning_rules.errors import RulePackError
from cleaning_rules.examples import check_rule
from cleaning_rules.pack import LoadedPack, load_pack_file
from cleaning_rules.rules import ExampleSpec

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One lint problem: where (``path:line``, ``:column`` when known), which rule when known,
    what kind, and why."""

    severity: Severity
    code: str
    path: str
    line: int
    message: str
    rule_id: str | None = None
    column: int | None = None

    def __str__(self) -> str:
        rule = f" {self.rule_id}:" if self.rule_id else ""
        column = "" if self.column is None else f":{self.column}"
        return f"{self.path}:{self.line}{column}:{rule} {self.message} [{self.code}]"

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
                    Finding(
                        "error",
                        "schema",
                        str(issue.path),
                        issue.line,
                        label + issue.message,
                        column=issue.column,
                    )
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
    ruleset = RuleSet(loaded, timeout=timeout)
    findings.extend(_shadowing_findings(ruleset))
    findings.extend(_idempotence_findings(ruleset))
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


def _shadowing_findings(ruleset: RuleSet) -> Iterator[Finding]:
    """Rules that act on their own examples alone (change, decide or extract) but on none of
    them once the whole rule set runs, because earlier rules rewrote, dropped or quarantined
    what they are there for; each is reported with those earlier rules."""
    order = {rule.rule_id: i for i, rule in enumerate(r for p in ruleset.packs for r in p.compiled)}
    for pack in ruleset.packs:
        for index, spec in enumerate(pack.spec.rules):
            target = _entity_field(pack, spec.fields)
            acting = [e for e in spec.examples if _acts(e)]
            if target is None or not acting:
                continue
            entity, name = target
            earlier: dict[str, None] = {}
            for example in acting:
                result = ruleset.apply(entity, {name: example.text})
                if spec.id in result.fired or result.rule_id == spec.id:
                    break
                acted = [*result.fired, *([result.rule_id] if result.rule_id else [])]
                earlier.update(dict.fromkeys(r for r in acted if order[r] < order[spec.id]))
            else:
                if earlier:
                    yield Finding(
                        "warning",
                        "shadowed",
                        str(pack.path),
                        pack.line_of("rules", index),
                        "shadowed by earlier rules: acts on none of its examples once "
                        f"{', '.join(earlier)} ran",
                        spec.id,
                    )


def _acts(example: ExampleSpec) -> bool:
    """Whether the example shows its rule acting: a change, a verdict or a value extracted."""
    return (
        example.expected_text != example.text
        or example.expected_verdict != "keep"
        or example.extracted is not None
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
