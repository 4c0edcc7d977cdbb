"""Load rule packs and apply them to records: the one entry point the pipeline codes against.

    ruleset = load_packs(["common", "medical"])
    result = ruleset.apply("medical_orders", row)   # RecordResult
    row_out = {**result.record, "_rules_version": ruleset.version}

Rules are compiled once, and the list of rules for each field of an entity is built on the first
record of that entity, so applying a rule set is a loop over precompiled regexes. Every regex
call runs under a time limit: a rule that runs away on one value quarantines that record (reason
``timeout``) instead of hanging the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import regex

from cleaning_rules.errors import STAGE, RulePackError
from cleaning_rules.pack import PACK_NAME, LoadedPack, load_pack_file
from cleaning_rules.rules import CompiledRule, TextRule, Verdict, VerdictRule
from pipelines.errors import ConfigError

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_TIMEOUT_S = 0.1
TIMEOUT_REASON = "timeout"
# Part of every rules version: bump it when the engine changes what an unchanged pack does
# (a normalisation form's output, the word boundaries of map tables), so rows cleaned before
# and after the change carry different versions.
ENGINE_FORMAT = "1"

_PACK_NAME = regex.compile(PACK_NAME)

# Per entity, each rule in run order: the rule, the fields it runs on, its prefilter, and its
# rewrite (a text rule) or itself again (a verdict rule). Unpacked into locals, so the hot loop
# looks up no attributes and makes no extra call for a rule its prefilter rules out.
Step = tuple[
    CompiledRule,
    tuple[str, ...],
    Callable[[str], bool] | None,
    Callable[[str, float | None], str] | None,
    VerdictRule | None,
]
Plan = tuple[Step, ...]


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of applying a rule set to one record.

    ``record`` is a new dict. When ``verdict`` is ``keep`` it holds the cleaned values; when a
    rule dropped or quarantined the record it is a copy of the input as it came in (what a
    steward needs to see, and what a replay after fixing the rule starts from). ``rule_id``,
    ``reason`` and ``field`` say which rule decided, why and on which field. ``fired`` lists,
    in order and once each, the rules that changed a value.
    """

    record: dict[str, object]
    verdict: Verdict = "keep"
    rule_id: str | None = None
    reason: str | None = None
    fired: tuple[str, ...] = ()
    field: str | None = None


class RuleSet:
    """Compiled rule packs, applied in pack ``order`` (then name) and rule order within a pack."""

    def __init__(self, packs: Iterable[LoadedPack], *, timeout: float = DEFAULT_TIMEOUT_S):
        self.packs: tuple[LoadedPack, ...] = tuple(
            sorted(packs, key=lambda pack: (pack.spec.order, pack.name))
        )
        if not timeout > 0:
            raise ConfigError(
                f"rule timeout must be a positive number of seconds, not {timeout}", stage=STAGE
            )
        self.timeout = timeout
        _check_unique(self.packs)
        self.version = rules_version(self.packs)
        self._plans: dict[str, Plan] = {}
        self._fields: dict[str, frozenset[str]] = {}

    @property
    def pack_names(self) -> list[str]:
        """Names of the packs, in the order they are applied."""
        return [pack.name for pack in self.packs]

    def fields_for(self, entity: str) -> set[str]:
        """The fields of ``entity`` that some pack names (the only fields ``apply`` can change)."""
        self._plan(entity)
        return set(self._fields[entity])

    def rules_for(self, entity: str, field: str) -> tuple[CompiledRule, ...]:
        """The compiled rules that run on ``field`` of ``entity``, in order."""
        return tuple(step[0] for step in self._plan(entity) if field in step[1])

    def apply(self, entity: str, record: Mapping[str, object]) -> RecordResult:
        """Clean the string fields of ``record`` that the packs name for ``entity``.

        Rules run in order (packs by ``order``, rules as written), each on every field it
        names; values that are not strings (None, numbers) are left as they are. The first
        rule that drops or quarantines the record ends the work on it; a regex that runs past
        the time limit quarantines the record with that rule's id and reason ``timeout``.
        """
        plan = self._plans.get(entity)
        if plan is None:
            plan = self._plan(entity)
        timeout = self.timeout
        cleaned = dict(record)
        fired: dict[str, None] = {}
        for rule, fields, skip, rewrite, judge in plan:
            for field in fields:
                value = cleaned.get(field)
                if not isinstance(value, str) or (skip is not None and skip(value)):
                    continue
                try:
                    if rewrite is not None:
                        new = rewrite(value, timeout)
                        if new != value:
                            cleaned[field] = new
                            fired[rule.rule_id] = None
                    elif judge is not None and judge.found(value, timeout):
                        return RecordResult(
                            dict(record),
                            judge.verdict,
                            judge.rule_id,
                            judge.reason,
                            tuple(fired),
                            field,
                        )
                except TimeoutError:
                    return RecordResult(
                        dict(record),
                        "quarantine",
                        rule.rule_id,
                        TIMEOUT_REASON,
                        tuple(fired),
                        field,
                    )
        return RecordResult(cleaned, fired=tuple(fired))

    def _plan(self, entity: str) -> Plan:
        plan = self._plans.get(entity)
        if plan is not None:
            return plan
        steps: list[Step] = []
        named: dict[str, None] = {}
        for pack in self.packs:
            pack_fields = dict.fromkeys(
                field
                for selector in pack.spec.applies_to
                if selector.matches(entity)
                for field in selector.fields
            )
            named.update(pack_fields)
            for rule in pack.compiled:
                fields = tuple(f for f in pack_fields if rule.fields is None or f in rule.fields)
                if not fields:
                    continue
                if isinstance(rule, TextRule):
                    steps.append((rule, fields, rule.skip, rule.rewrite, None))
                else:
                    steps.append((rule, fields, rule.skip, None, rule))
        self._fields[entity] = frozenset(named)
        self._plans[entity] = plan = tuple(steps)
        return plan

    def __reduce__(self) -> tuple[object, ...]:
        # Spark and Flink ship a rule set to their workers by pickling; it travels as its packs
        # (which recompile themselves) and rebuilds its per-entity plans there.
        return (_rebuild_ruleset, (self.packs, self.timeout))


def _rebuild_ruleset(packs: tuple[LoadedPack, ...], timeout: float) -> RuleSet:
    return RuleSet(packs, timeout=timeout)


def rules_version(packs: Iterable[LoadedPack]) -> str:
    """A short hash of the packs' contents: the same packs give the same version whatever the
    order they were named in; any change to a rule, selector or pack order changes it."""
    content = {
        "engine": ENGINE_FORMAT,
        "packs": [pack.fingerprint() for pack in sorted(packs, key=lambda pack: pack.name)],
    }
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def available_packs(pack_dir: Path | None = None) -> list[str]:
    """Names of the packs in ``pack_dir`` (default: the shipped packs), sorted."""
    folder = DEFAULT_PACK_DIR if pack_dir is None else pack_dir
    return sorted(path.stem for path in folder.glob("*.yaml"))


def load_packs(
    names: Iterable[str], pack_dir: Path | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
) -> RuleSet:
    """Load, validate and compile the named packs from ``pack_dir`` (default: shipped packs).

    ``timeout`` is the limit in seconds for one rule on one field of one record. An unknown
    name, invalid YAML or an invalid rule raises :class:`RulePackError` naming the file (and
    line). A name listed twice is loaded once.
    """
    if isinstance(names, str):
        raise TypeError(f"load_packs takes a list of pack names, not the string {names!r}")
    folder = DEFAULT_PACK_DIR if pack_dir is None else Path(pack_dir)
    packs = []
    for name in dict.fromkeys(names):
        path = folder / f"{name}.yaml"
        if _PACK_NAME.fullmatch(name) is None or not path.is_file():
            known = ", ".join(available_packs(folder)) or "none"
            raise RulePackError(
                f"unknown rule pack {name!r}: no {name}.yaml in {folder} (available: {known})"
            )
        packs.append(load_pack_file(path))
    return RuleSet(packs, timeout=timeout)


def _check_unique(packs: tuple[LoadedPack, ...]) -> None:
    seen: dict[str, LoadedPack] = {}
    for pack in packs:
        for rule in pack.rules:
            other = seen.setdefault(rule.id, pack)
            if other is not pack:
                raise RulePackError(
                    f"rule id {rule.id!r} is defined in both {other.path} and {pack.path}"
                )
