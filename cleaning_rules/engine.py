"""Load rule packs and apply them to records: the one entry point the pipeline codes against.

    ruleset = load_packs(["common", "medical"])
    result = ruleset.apply("medical_orders", row)   # RecordResult
    row_out = {**result.record, "_rules_version": ruleset.version}
    results = ruleset.apply_batch("medical_orders", rows)   # the same, for a batch
    cleaned = ruleset.apply_columns("medical_orders", columns, len(rows))   # column by column

Rules are compiled once, and on the first record of an entity the rules of each of its fields
are laid out as a :class:`~cleaning_rules.plan.FieldPlan`, so applying a rule set is a loop over
precompiled regexes that skips, field by field, the rules whose characters are absent. A batch
is cleaned column by column: each distinct value once, each rule over many values per regex
call (``joined.py``). Every regex call runs under a time limit: a rule that runs away on one
value quarantines that record (reason ``timeout``) instead of hanging the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import regex

from cleaning_rules.errors import STAGE, RulePackError
from cleaning_rules.pack import PACK_NAME, LoadedPack, load_pack_file
from cleaning_rules.plan import (
    Decision,
    FieldOutcome,
    FieldPlan,
    compile_field_plan,
    run_column_remembered,
    run_field_remembered,
)
from cleaning_rules.rules import CompiledRule, ExtractionRule, Verdict
from pipelines.errors import ConfigError

DEFAULT_PACK_DIR = Path(__file__).resolve().parent / "packs"
DEFAULT_TIMEOUT_S = 0.1
# Part of every rules version: bump it when the engine changes what an unchanged pack does
# (a normalisation form's output, the word boundaries of map tables), so rows cleaned before
# and after the change carry different versions.
ENGINE_FORMAT = "1"

_PACK_NAME = regex.compile(PACK_NAME)

# Per entity, its fields' plans, in the order the packs name the fields.
Plan = tuple[FieldPlan, ...]


class RecordResult(NamedTuple):
    """The outcome of applying a rule set to one record.

    ``record`` is a new dict. When ``verdict`` is ``keep`` it holds the cleaned values; when a
    rule dropped or quarantined the record it is a copy of the input as it came in (what a
    steward needs to see, and what a replay after fixing the rule starts from). ``rule_id``,
    ``reason`` and ``field`` say which rule decided, why and on which field. ``fired`` lists,
    in order and once each, the rules that changed a value or extracted one. A kept record
    also holds each value an extract rule found, under the rule's ``into`` field (the rule
    that comes last in rule order wins when two write the same field).

    Immutable like a frozen dataclass, but built as a tuple: one is made per record, and a
    frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) costs more than
    cleaning a typical field.
    """

    record: dict[str, object]
    verdict: Verdict = "keep"
    rule_id: str | None = None
    reason: str | None = None
    fired: tuple[str, ...] = ()
    field: str | None = None


class ColumnsResult(NamedTuple):
    """The outcome of applying a rule set to a batch given as columns, row by row as
    :meth:`RuleSet.apply_batch` would give it, without a record per row.

    ``columns`` holds the columns given, cleaned in the rows kept, as they came in elsewhere.
    ``verdicts``, ``rule_ids``, ``reasons`` and ``fields`` say per row which rule decided, why
    and on which field (None in a kept row). ``extracted`` holds, per field an extract rule of
    the entity writes, the value found in each kept row (None where nothing was found).
    """

    columns: dict[str, list[object]]
    verdicts: list[Verdict]
    rule_ids: list[str | None]
    reasons: list[str | None]
    fields: list[str | None]
    extracted: dict[str, list[str | None]]


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
        for entity in dict.fromkeys(
            selector.entity for pack in self.packs for selector in pack.spec.applies_to
        ):
            _check_extract_targets(self.packs, entity)
        self.version = rules_version(self.packs)
        self._plans: dict[str, Plan] = {}
        self._fields: dict[str, frozenset[str]] = {}
        self._rules: dict[str, dict[str, tuple[CompiledRule, ...]]] = {}
        self._extracted: dict[str, tuple[str, ...]] = {}

    @property
    def pack_names(self) -> list[str]:
        """Names of the packs, in the order they are applied."""
        return [pack.name for pack in self.packs]

    def extracted_fields(self, entity: str | None = None) -> tuple[str, ...]:
        """The fields extract rules write for ``entity`` (None: for any entity), in rule
        order, once each: the columns a cleaning stage adds (null where nothing was found)."""
        names: list[str] = []
        for pack in self.packs:
            pack_fields = {
                field
                for selector in pack.spec.applies_to
                if entity is None or selector.matches(entity)
                for field in selector.fields
            }
            names.extend(
                rule.into
                for rule in pack.compiled
                if isinstance(rule, ExtractionRule)
                and pack_fields
                and (rule.fields is None or rule.fields & pack_fields)
            )
        return tuple(dict.fromkeys(names))

    def fields_for(self, entity: str) -> set[str]:
        """The fields of ``entity`` that some pack names (the only fields ``apply`` can change)."""
        self._plan(entity)
        return set(self._fields[entity])

    def rules_for(self, entity: str, field: str) -> tuple[CompiledRule, ...]:
        """The compiled rules that run on ``field`` of ``entity``, in order."""
        self._plan(entity)
        return self._rules[entity].get(field, ())

    def apply(self, entity: str, record: Mapping[str, object]) -> RecordResult:
        """Clean the string fields of ``record`` that the packs name for ``entity``.

        Rules run in order (packs by ``order``, rules as written), each on every field it
        names; values that are not strings (None, numbers) are left as they are. The first
        rule that drops or quarantines the record ends the work on it; a regex that runs past
        the time limit quarantines the record with that rule's id and reason ``timeout``.
        The outcomes of short values are remembered per field, so a value seen on a recent
        record or batch is not cleaned again.
        """
        plan = self._plans.get(entity)
        if plan is None:
            plan = self._plan(entity)
        timeout = self.timeout
        hits: list[tuple[str, FieldOutcome]] = []
        before: tuple[int, int] | None = None
        for field_plan in plan:
            value = record.get(field_plan.field)
            if not isinstance(value, str):
                continue
            outcome = run_field_remembered(field_plan, value, timeout, before)
            if outcome is not None:
                hits.append((field_plan.field, outcome))
                decision = outcome.decision
                if decision is not None and (before is None or decision[:2] < before):
                    before = decision[:2]
        return _combine(record, hits) if hits else RecordResult(dict(record))

    def apply_batch(
        self, entity: str, records: Sequence[Mapping[str, object]]
    ) -> list[RecordResult]:
        """:meth:`apply` on each of ``records`` (all of ``entity``): the same results, in order.

        Each distinct value of a field is cleaned once per batch and its outcome reused for
        every record that holds it (text columns repeat: drug names, units, cities, log
        templates); a short value seen in a recent batch or record is not cleaned again. A
        value is cleaned through all of its field's rules even when another field of its
        record was already dropped, so that the outcome can be shared; the decision still goes
        to the earliest rule, as in :meth:`apply`. A value that timed out is quarantined in
        every record of the batch that holds it.
        """
        plan = self._plans.get(entity)
        if plan is None:
            plan = self._plan(entity)
        columns = {fp.field: [record.get(fp.field) for record in records] for fp in plan}
        touched = self._touched(plan, columns)
        return [
            _combine(record, hits) if (hits := touched.get(row)) else RecordResult(dict(record))
            for row, record in enumerate(records)
        ]

    def apply_columns(
        self, entity: str, columns: Mapping[str, Sequence[object]], rows: int
    ) -> ColumnsResult:
        """:meth:`apply_batch` on a batch of ``rows`` rows given as ``columns`` (a field the
        packs name and ``columns`` lacks is absent from every row), the results as columns:
        what a stage over Arrow columns needs, without building a record per row.

        Each column given is copied, then cleaned in the rows kept; a dropped or quarantined
        row keeps its values as they came in. ``fired`` is not reported.
        """
        plan = self._plans.get(entity)
        if plan is None:
            plan = self._plan(entity)
        named = {fp.field: columns[fp.field] for fp in plan if fp.field in columns}
        touched = self._touched(plan, named)
        cleaned = {field: list(values) for field, values in columns.items()}
        verdicts: list[Verdict] = ["keep"] * rows
        rule_ids: list[str | None] = [None] * rows
        reasons: list[str | None] = [None] * rows
        fields: list[str | None] = [None] * rows
        extracted: dict[str, list[str | None]] = {
            name: [None] * rows for name in self._extracted[entity]
        }
        for row, hits in touched.items():
            if len(hits) == 1 and hits[0][1].decision is None:
                # The usual case: one field changed (or extracted from) in this row.
                field, outcome = hits[0]
                cleaned[field][row] = outcome.value
                for _, _, into, value in outcome.extracted:
                    extracted[into][row] = value
                continue
            decided = _decided(hits)
            if decided is not None:
                (_, _, verdicts[row], rule_ids[row], reasons[row]), fields[row] = decided
                continue
            for field, outcome in hits:
                cleaned[field][row] = outcome.value
            found = [found for _, outcome in hits for found in outcome.extracted]
            for _, _, into, value in sorted(found):  # in rule order: the last rule wins
                extracted[into][row] = value
        return ColumnsResult(cleaned, verdicts, rule_ids, reasons, fields, extracted)

    def _touched(
        self, plan: Plan, columns: Mapping[str, Sequence[object]]
    ) -> dict[int, list[tuple[str, FieldOutcome]]]:
        """Per row, the outcomes of its fields that a rule changed or decided on: each
        distinct value of a column cleaned once (``run_column_remembered``)."""
        touched: dict[int, list[tuple[str, FieldOutcome]]] = {}
        for field_plan in plan:
            field = field_plan.field
            column = columns.get(field)
            if column is None:
                continue
            distinct = list(dict.fromkeys(value for value in column if isinstance(value, str)))
            active = run_column_remembered(field_plan, distinct, self.timeout)
            if not active:
                continue
            for row, value in enumerate(column):
                if isinstance(value, str) and (outcome := active.get(value)) is not None:
                    touched.setdefault(row, []).append((field, outcome))
        return touched

    def _plan(self, entity: str) -> Plan:
        plan = self._plans.get(entity)
        if plan is not None:
            return plan
        per_field: dict[str, list[tuple[int, int, CompiledRule]]] = {}
        index = 0
        for pack in self.packs:
            pack_fields = dict.fromkeys(
                field
                for selector in pack.spec.applies_to
                if selector.matches(entity)
                for field in selector.fields
            )
            for field in pack_fields:
                per_field.setdefault(field, [])
            for rule in pack.compiled:
                fields = [f for f in pack_fields if rule.fields is None or f in rule.fields]
                for slot, field in enumerate(fields):
                    per_field[field].append((index, slot, rule))
                index += 1
        _check_extract_targets(self.packs, entity)
        self._fields[entity] = frozenset(per_field)
        # Read by every ``apply_columns`` call: a walk over every rule of every pack.
        self._extracted[entity] = self.extracted_fields(entity)
        self._rules[entity] = {
            field: tuple(rule for _, _, rule in rules) for field, rules in per_field.items()
        }
        self._plans[entity] = plan = tuple(
            compile_field_plan(field, rules) for field, rules in per_field.items() if rules
        )
        return plan

    def __reduce__(self) -> tuple[object, ...]:
        # Spark and Flink ship a rule set to their workers by pickling; it travels as its packs
        # (which recompile themselves) and rebuilds its per-entity plans there.
        return (_rebuild_ruleset, (self.packs, self.timeout))


def _rebuild_ruleset(packs: tuple[LoadedPack, ...], timeout: float) -> RuleSet:
    return RuleSet(packs, timeout=timeout)


def _combine(
    record: Mapping[str, object], hits: Sequence[tuple[str, FieldOutcome]]
) -> RecordResult:
    """A record's result from the outcomes of its fields that changed or decided (at least
    one), as if the rules had run one by one over all fields: the earliest decision wins, and
    ``fired`` holds the changes that rule order makes before it."""
    if len(hits) == 1:
        # The usual case, built directly: one field changed (or decided) in this record.
        field, outcome = hits[0]
        if outcome.decision is None:
            cleaned = dict(record)
            cleaned[field] = outcome.value
            for _, _, into, value in outcome.extracted:
                cleaned[into] = value
            return RecordResult(cleaned, "keep", None, None, outcome.fired, None)
    earliest = _decided(hits)
    if earliest is None:
        cleaned = dict(record)
        for field, outcome in hits:
            cleaned[field] = outcome.value
        extracted = sorted(found for _, outcome in hits for found in outcome.extracted)
        for _, _, into, value in extracted:  # in rule order: the last rule wins
            cleaned[into] = value
        return RecordResult(cleaned, "keep", None, None, _fired(hits, None), None)
    (index, slot, verdict, rule_id, reason), decided_field = earliest
    fired = _fired(hits, (index, slot))
    return RecordResult(dict(record), verdict, rule_id, reason, fired, decided_field)


def _decided(hits: Sequence[tuple[str, FieldOutcome]]) -> tuple[Decision, str] | None:
    """The earliest decision in rule order among a record's outcomes, and its field."""
    decided: Decision | None = None
    decided_field = ""
    for field, outcome in hits:
        decision = outcome.decision
        if decision is not None and (decided is None or decision[:2] < decided[:2]):
            decided, decided_field = decision, field
    return None if decided is None else (decided, decided_field)


def _fired(
    hits: Sequence[tuple[str, FieldOutcome]], before: tuple[int, int] | None
) -> tuple[str, ...]:
    """The rules that changed a value, in rule order, once each; with ``before``, only the
    changes that rule order would have made before that decision."""
    changes = sorted(change for _, outcome in hits for change in outcome.changes)
    return tuple(
        dict.fromkeys(
            rule_id for index, slot, rule_id in changes if before is None or (index, slot) < before
        )
    )


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


def _check_extract_targets(packs: tuple[LoadedPack, ...], entity: str) -> None:
    """An extract rule must write a field of its own: not one a pack cleans for ``entity``
    (whose value would then depend on where the rule sits in rule order)."""
    cleaned = {
        field
        for pack in packs
        for selector in pack.spec.applies_to
        if selector.matches(entity)
        for field in selector.fields
    }
    for pack in packs:
        if not any(selector.matches(entity) for selector in pack.spec.applies_to):
            continue
        for index, rule in enumerate(pack.compiled):
            if isinstance(rule, ExtractionRule) and rule.into in cleaned:
                raise RulePackError(
                    f"{pack.path}:{pack.line_of('rules', index, 'into')}: rule {rule.rule_id!r} "
                    f"extracts into {rule.into!r}, a field that packs clean for entity "
                    f"{entity!r}; write it to a field of its own"
                )


def _check_unique(packs: tuple[LoadedPack, ...]) -> None:
    seen: dict[str, LoadedPack] = {}
    for pack in packs:
        for rule in pack.rules:
            other = seen.setdefault(rule.id, pack)
            if other is not pack:
                raise RulePackError(
                    f"rule id {rule.id!r} is defined in both {other.path} and {pack.path}"
                )
