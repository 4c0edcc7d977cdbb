"""Per-field plans: the rules that run on one field of an entity, compiled for the hot loop.

A rule set runs its rules in order, each on every field it names, and the first rule that drops
or quarantines a record decides. A rule reads and writes one field at a time, so the engine can
run a record field by field instead, each field through its own list of rules: the outcome is
the same as long as the decision goes to the earliest (rule, field) that would have decided in
rule order, which the engine tracks with each step's ``index`` (the rule's place in the entity's
rule order) and ``slot`` (the field's place among the rule's fields).

Field by field, the rules that cannot apply to a value are found together: a field's gate
merges the :class:`~cleaning_rules.prefilter.Trigger` of each of its rules into one character
set, and one pass over the text (``frozenset.intersection``) gives the bit mask of the rules
that may apply. Most values of most fields hold none of them, and cost that one pass; the
others run their own exact prefilter, then the regex under its time limit.

A long text with line breaks (a contract) is mostly lines seen before: while a field's rules
read a text as its lines, the text goes through them one distinct line at a time, each line's
outcome remembered (:class:`LinePlan`), and through the rest of the rules whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import reduce
from itertools import chain
from operator import and_, or_
from typing import NamedTuple, TypeVar

from cleaning_rules.joined import search_each, sub_each
from cleaning_rules.prefilter import CannotMatch, Trigger, fold_preimage
from cleaning_rules.rules import (
    CompiledRule,
    ExtractionRule,
    Rewrite,
    TextRule,
    Verdict,
    VerdictRule,
)

# (index, slot, rule id, exact prefilter, rewrite of a text rule, verdict rule, the rule, the
# gate bits its introduced characters wake or None, extraction rule): a tuple, so the hot loop
# unpacks it into locals instead of looking up attributes. Exactly one of the rewrite, the
# verdict rule and the extraction rule is set.
Step = tuple[
    int,
    int,
    str,
    CannotMatch | None,
    Rewrite | None,
    VerdictRule | None,
    CompiledRule,
    int | None,
    ExtractionRule | None,
]
Gate = Callable[[str], int]
K = TypeVar("K")
V = TypeVar("V")

# A gate reads a text of at least this many characters line by line, remembering the masks of
# up to REMEMBERED_LINES lines of at most REMEMBERED_LINE_LENGTH characters (emptied when full).
LINE_GATE_FROM = 256
REMEMBERED_LINES = 4096
REMEMBERED_LINE_LENGTH = 256
# A text of at least BY_LINES_FROM characters with a line break runs its plan's line steps
# line by line, remembering the outcomes of up to CLEANED_LINES lines (emptied when full).
BY_LINES_FROM = 128
CLEANED_LINES = 16_384


class FieldPlan(NamedTuple):
    """The steps that run on one field, in rule order, and the gate over them: bit ``i`` of
    ``gate(text)`` is set when ``steps[i]`` may change or match ``text``. A tuple, unpacked
    once per field in the hot loop. ``remembered`` holds recent outcomes by value
    (:func:`run_field_remembered`, :func:`run_column_remembered`); ``lines`` (None: none) the
    steps that a long text may run line by line."""

    field: str
    steps: tuple[Step, ...]
    gate: Gate
    remembered: dict[str, FieldOutcome | None]
    lines: LinePlan | None = None


# One line through a field's first steps (LinePlan): the line as they left it (None: a rule
# removed it), the bits of the steps that changed it, whether it was blank after the rule that
# collapses blank lines, the bits of the anchored verdict rules whose alphabet holds all of
# it, the gate's bits for the steps after the line steps, and the facts the line gives the
# step after them (a rule with ``line_facts``; () without one).
LineOutcome = tuple[str | None, int, bool, int, int, tuple[object, ...]]


class LinePlan(NamedTuple):
    """The first ``count`` steps of a field plan when every one of them reads a text of
    several lines as the lines on their own (``by_line`` on the compiled rule): a long text
    then goes through them line by line, each distinct line once, and the rest of the steps
    over the text the lines make up.

    Contract clauses, signature blocks and log frames repeat from text to text far more than
    whole texts do: most lines of a long text have been cleaned before, and are looked up.

    Bit masks over the plan's steps: ``prefix`` (the line steps), ``forced`` (steps every line
    goes through whatever the gate says: the blank-lines rule, anchored verdicts),
    ``blank_bit`` (the rule whose lines' blank lines collapse, 0: none), ``upto_blank`` (it and
    the steps before it), ``anchored`` (verdict rules anchored at both ends, judged by their
    alphabet), ``newline`` (the later steps a line break wakes). ``facts`` is the step right
    after the line steps when its rule reads facts off lines (``line_facts``, a contract's
    party declarations): each line's facts are remembered with it, and the rule rewrites the
    text with them without reading it again.
    """

    count: int
    prefix: int
    forced: int
    blank_bit: int
    upto_blank: int
    anchored: int
    newline: int
    facts: Step | None
    remembered: dict[str, LineOutcome]
    changes: dict[int, tuple[Change, ...]]


def _line_plan(steps: Sequence[Step], gate: Gate) -> LinePlan | None:
    """The plan of the steps a long text can run line by line: the longest run from the first
    step in which each rule reads a text as its lines (None: not even the first does)."""
    count = blank_bit = anchored = 0
    for position, (_, _, _, _, rewrite, judge, rule, _, extractor) in enumerate(steps):
        bit = 1 << position
        if rewrite is not None:
            assert isinstance(rule, TextRule)
            if rule.by_line is None or (rule.blank_lines and blank_bit):
                break
            if rule.blank_lines:
                blank_bit = bit
        elif judge is not None:
            if not judge.by_line:
                if judge.alphabet is None:
                    break
                anchored |= bit
        elif extractor is not None and not extractor.by_line:
            break
        count += 1
    if count == 0:
        return None
    prefix = (1 << count) - 1
    facts = None
    if count < len(steps):
        rule = steps[count][6]
        if isinstance(rule, TextRule) and rule.line_facts is not None:
            facts = steps[count]
    return LinePlan(
        count,
        prefix,
        blank_bit | anchored,
        blank_bit,
        (blank_bit << 1) - 1 if blank_bit else 0,
        anchored,
        gate("\n") & ~prefix,
        facts,
        {},
        {},
    )


def compile_field_plan(field: str, rules: Sequence[tuple[int, int, CompiledRule]]) -> FieldPlan:
    """The plan of ``field`` from its ``(index, slot, rule)`` triples, in rule order."""
    gate = trigger_gate([rule.trigger for _, _, rule in rules])
    steps: list[Step] = []
    for index, slot, rule in rules:
        if isinstance(rule, TextRule):
            # A rewrite's output holds characters of its input and those it introduces, so the
            # rules it can wake are those the gate finds in the introduced characters.
            wakes = None if rule.introduces is None else gate("".join(sorted(rule.introduces)))
            steps.append(
                (index, slot, rule.rule_id, rule.skip, rule.rewrite, None, rule, wakes, None)
            )
        elif isinstance(rule, VerdictRule):
            steps.append((index, slot, rule.rule_id, rule.skip, None, rule, rule, None, None))
        else:
            steps.append((index, slot, rule.rule_id, rule.skip, None, None, rule, None, rule))
    return FieldPlan(field, tuple(steps), gate, {}, _line_plan(steps, gate))


def trigger_gate(triggers: Sequence[Trigger | None]) -> Gate:
    """A gate over rules with these triggers (None: the rule is always a candidate).

    A case-folded trigger character stands for every character whose case folding holds it
    (``k`` for K and the Kelvin sign), so the text is read as it is, never case-folded.
    """
    always = nonascii = 0
    bits: dict[str, int] = {}
    for position, trigger in enumerate(triggers):
        bit = 1 << position
        if trigger is None:
            always |= bit
            continue
        if trigger.nonascii:
            nonascii |= bit
        for char in trigger.chars:
            for member in fold_preimage(char) if trigger.fold else (char,):
                bits[member] = bits.get(member, 0) | bit
    chars = frozenset(bits)
    newline = bits.get("\n", 0)
    lines: dict[str, int] = {}

    def gate_chars(text: str) -> int:
        mask = always
        for char in chars.intersection(text):
            mask |= bits[char]
        if nonascii and not text.isascii():
            mask |= nonascii
        return mask

    def gate(text: str) -> int:
        if len(text) < LINE_GATE_FROM or "\n" not in text:
            return gate_chars(text)
        # A long text's mask is the union of its lines' masks (and the line break's bits): the
        # mask is a union over characters. Lines repeat across long texts (a contract's
        # clauses, a log's frames) far more than the texts do, and a line's mask is looked up
        # instead of reading its characters again.
        mask = newline
        for line in text.split("\n"):
            found = lines.get(line)
            if found is None:
                found = gate_chars(line)
                if len(line) <= REMEMBERED_LINE_LENGTH:
                    _keep(lines, line, found, REMEMBERED_LINES)
            mask |= found
        return mask

    return gate


TIMEOUT_REASON = "timeout"

# Where a rule decided on one value: (index, slot, verdict, rule id, reason).
Decision = tuple[int, int, Verdict, str, str]
# (index, slot, rule id) of a rule that changed the value or extracted a value from it.
Change = tuple[int, int, str]
# (index, slot, field written, value) of an extract rule that found a value.
Extracted = tuple[int, int, str, str]


class FieldOutcome(NamedTuple):
    """One value through one field's plan: the cleaned text, the rules that changed it or
    extracted from it (as changes, and as rule ids in order, once each), the first rule that
    dropped or quarantined it (None: kept), and the values extracted, in rule order.

    ``fired`` is stored, not derived on demand: a batch shares one outcome among every record
    that holds the value, and each of their results needs it.
    """

    value: str
    changes: tuple[Change, ...]
    decision: Decision | None
    fired: tuple[str, ...]
    extracted: tuple[Extracted, ...] = ()

    @classmethod
    def of(
        cls,
        value: str,
        changes: list[Change],
        decision: Decision | None,
        extracted: list[Extracted] | None = None,
    ) -> FieldOutcome:
        """The outcome, with ``changes`` and ``extracted`` (in rule order) frozen."""
        fired = tuple(dict.fromkeys(rule_id for _, _, rule_id in changes))
        return cls(value, tuple(changes), decision, fired, tuple(extracted or ()))


def run_field(
    plan: FieldPlan, value: str, timeout: float, before: tuple[int, int] | None = None
) -> FieldOutcome | None:
    """Run ``value`` through ``plan``, each regex under ``timeout`` seconds; None when no rule
    changed or decided on it (most values of most fields: no outcome is built for them).

    Work stops at the first decision (a drop, a quarantine, or a timeout, which quarantines),
    and with ``before`` at the first step that rule order would reach after that point (a
    rule on another field already decided).
    """
    steps, gate = plan.steps, plan.gate
    by_lines = None if before is not None else _by_lines(plan, value, timeout)
    if by_lines is None:
        changes: list[Change] = []
        mask = gate(value)
    else:
        value, changes, mask = by_lines
    extracted: list[Extracted] = []
    while mask:
        low = mask & -mask
        mask ^= low
        index, slot, rule_id, skip, rewrite, judge, _, wakes, extractor = steps[
            low.bit_length() - 1
        ]
        if before is not None and (index, slot) > before:
            break
        if skip is not None and skip(value):
            continue
        try:
            if rewrite is not None:
                new = rewrite(value, timeout)
                if new != value:
                    value = new
                    changes.append((index, slot, rule_id))
                    # Later rules that the new text may need: those it already had, and
                    # those its new characters wake (all of them read again when unknown).
                    mask = (gate(new) if wakes is None else mask | wakes) & -(low << 1)
            elif judge is not None:
                if judge.found(value, timeout):
                    decision = (index, slot, judge.verdict, rule_id, judge.reason)
                    return FieldOutcome.of(value, changes, decision, extracted)
            elif extractor is not None and (found := extractor.found(value, timeout)) is not None:
                extracted.append((index, slot, extractor.into, found))
                changes.append((index, slot, rule_id))
        except TimeoutError:
            decision = (index, slot, "quarantine", rule_id, TIMEOUT_REASON)
            return FieldOutcome.of(value, changes, decision, extracted)
    return FieldOutcome.of(value, changes, None, extracted) if changes else None


# Short values repeat from record to record and from batch to batch (drug names, units,
# cities, log templates): each field remembers the outcomes of the last few thousand short
# values it cleaned, on either path. Long values (contract bodies) rarely repeat and would cost
# memory. The memory is emptied when full: cheaper than keeping an LRU order on every call,
# and safe when threads share a rule set.
REMEMBERED_VALUES = 4096
REMEMBERED_LENGTH = 256
_UNSEEN = object()


def run_field_remembered(
    plan: FieldPlan, value: str, timeout: float, before: tuple[int, int] | None = None
) -> FieldOutcome | None:
    """:func:`run_field`, or the outcome it gave on the same value before.

    A remembered outcome is complete (run without ``before``): it may hold a decision after
    ``before``, which the caller's earliest-decision rule sets aside, as for a batch.
    """
    outcome = plan.remembered.get(value, _UNSEEN)
    if outcome is not _UNSEEN:
        return outcome  # type: ignore[return-value]
    outcome = run_field(plan, value, timeout, before)
    if before is None:
        _remember(plan.remembered, value, outcome)
    return outcome


def run_column_remembered(
    plan: FieldPlan, values: Sequence[str], timeout: float
) -> dict[str, FieldOutcome]:
    """The outcomes of the distinct ``values`` that a rule changed or decided on, by value:
    remembered ones as they were, the others from one :func:`run_column` over them."""
    remembered = plan.remembered
    active: dict[str, FieldOutcome] = {}
    unseen: list[str] = []
    for value in values:
        outcome = remembered.get(value, _UNSEEN)
        if outcome is _UNSEEN:
            unseen.append(value)
        elif outcome is not None:
            active[value] = outcome  # type: ignore[assignment]
    outcomes = run_column(plan, unseen, timeout)
    for position, value in enumerate(unseen):
        outcome = outcomes.get(position)
        _remember(remembered, value, outcome)
        if outcome is not None:
            active[value] = outcome
    return active


def _remember(
    remembered: dict[str, FieldOutcome | None], value: str, outcome: FieldOutcome | None
) -> None:
    # A timeout is never remembered: it says how busy the machine was, not what the value is.
    if len(value) > REMEMBERED_LENGTH or (
        outcome is not None
        and outcome.decision is not None
        and outcome.decision[4] == TIMEOUT_REASON
    ):
        return
    _keep(remembered, value, outcome, REMEMBERED_VALUES)


def _keep(memory: dict[K, V], key: K, value: V, limit: int) -> None:
    """``memory[key] = value``, ``memory`` emptied first when it holds ``limit`` entries: the
    engine's memories are emptied when full, cheaper than keeping an LRU order on every call,
    and safe when threads share them."""
    if len(memory) >= limit:
        memory.clear()
    memory[key] = value


def run_column(plan: FieldPlan, values: Sequence[str], timeout: float) -> dict[int, FieldOutcome]:
    """:func:`run_field` on each of ``values`` (distinct, best), rule by rule over all of them.

    Each rule runs once over the values its gate and prefilter let through, in chunks joined
    by a separator where the rule has a joined form (``joined.py``), else value by value. The
    outcomes are those of :func:`run_field` without ``before``, by position in ``values``, for
    the values a rule changed or decided on (most values, left alone, have none).
    """
    steps, gate = plan.steps, plan.gate
    current = list(values)
    changes: dict[int, list[Change]] = {}
    masks: list[int] = []
    for row, value in enumerate(values):
        by_lines = _by_lines(plan, value, timeout)
        if by_lines is None:
            masks.append(gate(value))
        else:
            current[row], row_changes, mask = by_lines
            if row_changes:
                changes[row] = row_changes
            masks.append(mask)
    decisions: dict[int, Decision] = {}
    extracted: dict[int, list[Extracted]] = {}
    waiting: list[list[int]] = [[] for _ in steps]  # per step, the rows that may need it
    for row, mask in enumerate(masks):
        _enqueue(waiting, row, mask)
    for position, (index, slot, rule_id, skip, _, _, rule, wakes, _) in enumerate(steps):
        bit = 1 << position
        rows = [
            row
            for row in dict.fromkeys(waiting[position])
            if masks[row] & bit
            and row not in decisions
            and (skip is None or not skip(current[row]))
        ]
        waiting[position] = []
        if not rows:
            continue
        texts = [current[row] for row in rows]
        if isinstance(rule, TextRule):
            rewritten = _rewrite_all(rule, texts, timeout)
            for row, old, new in zip(rows, texts, rewritten, strict=True):
                if new is None:
                    decisions[row] = (index, slot, "quarantine", rule_id, TIMEOUT_REASON)
                elif new != old:
                    current[row] = new
                    changes.setdefault(row, []).append((index, slot, rule_id))
                    later = (gate(new) if wakes is None else masks[row] | wakes) & -(bit << 1)
                    _enqueue(waiting, row, later & ~masks[row])
                    masks[row] = later
        elif isinstance(rule, VerdictRule):
            found = _search_all(rule, texts, timeout)
            for row, hit in zip(rows, found, strict=True):
                if hit is None:
                    decisions[row] = (index, slot, "quarantine", rule_id, TIMEOUT_REASON)
                elif hit:
                    decisions[row] = (index, slot, rule.verdict, rule_id, rule.reason)
        else:
            for row, text in zip(rows, texts, strict=True):
                try:
                    value = rule.found(text, timeout)
                except TimeoutError:
                    decisions[row] = (index, slot, "quarantine", rule_id, TIMEOUT_REASON)
                    continue
                if value is not None:
                    extracted.setdefault(row, []).append((index, slot, rule.into, value))
                    changes.setdefault(row, []).append((index, slot, rule_id))
    return {
        row: FieldOutcome.of(
            current[row], changes.get(row, []), decisions.get(row), extracted.get(row)
        )
        for row in sorted(changes.keys() | decisions.keys())
    }


def _by_lines(plan: FieldPlan, text: str, timeout: float) -> tuple[str, list[Change], int] | None:
    """A long text through the plan's line steps (:class:`LinePlan`), line by line: the text
    they make, the changes (as :func:`run_field` records them) and the gate's mask for the
    steps after them. None when the text is short, has one line, or must run whole: a line
    on which a rule decided, timed out or wrote a line break, or an anchored verdict rule
    whose alphabet holds every line."""
    lines = plan.lines
    if lines is None or len(text) < BY_LINES_FROM or "\n" not in text:
        return None
    remembered = lines.remembered
    split = text.split("\n")
    outcomes: list[LineOutcome | None] = list(map(remembered.get, split))
    if None in outcomes:
        for position, line in enumerate(split):
            if outcomes[position] is not None:
                continue
            outcome = remembered.get(line) or _clean_line(plan, lines, line, timeout)
            if outcome is None:
                return None
            if len(line) <= REMEMBERED_LINE_LENGTH:
                _keep(remembered, line, outcome, CLEANED_LINES)
            outcomes[position] = outcome
    values, bits, blanks, insides, afters, facts = zip(*outcomes, strict=True)
    if lines.anchored and reduce(and_, insides, lines.anchored):
        return None  # an anchored verdict rule may match the whole text
    keep = _kept_lines(blanks) if lines.blank_bit and any(blanks) else None
    if keep is None:
        changed = reduce(or_, bits)
        mask = reduce(or_, afters, lines.newline)
    else:
        changed, mask = 0, lines.newline
        for position, kept_line in enumerate(keep):
            if kept_line:
                changed |= bits[position]
                mask |= afters[position]
            else:
                # A blank line the blank-lines rule removed: later rules never saw it.
                changed |= (bits[position] & lines.upto_blank) | lines.blank_bit
        values = tuple(value for value, kept_line in zip(values, keep, strict=True) if kept_line)
        facts = tuple(found for found, kept_line in zip(facts, keep, strict=True) if kept_line)
    # A removed line is None, with no facts.
    kept = values if None not in values else [value for value in values if value is not None]
    text = "\n".join(kept)
    if lines.facts is not None:
        # The step after the line steps, with the facts its lines gave: nothing to do without.
        _, _, _, _, _, _, rule, wakes, _ = lines.facts
        bit = 1 << lines.count
        if any(facts):
            assert isinstance(rule, TextRule) and rule.with_facts is not None
            new = rule.with_facts(text, list(chain.from_iterable(facts)))
            if new != text:
                text = new
                changed |= bit
                mask |= plan.gate(new) if wakes is None else wakes
        mask &= -(bit << 1)
    found = lines.changes.get(changed)
    if found is None:
        steps = plan.steps
        found = tuple(
            (index, slot, rule_id)
            for position, (index, slot, rule_id, *_) in enumerate(steps)
            if changed >> position & 1
        )
        _keep(lines.changes, changed, found, CLEANED_LINES)
    return text, list(found), mask


def _kept_lines(blank: Sequence[bool]) -> list[bool]:
    """Which lines the blank-lines rule keeps, given which were blank after it: of each run of
    blank lines, the first, unless the run starts or ends the text."""
    keep = [True] * len(blank)
    start, end = 0, len(blank) - 1
    while start <= end and blank[start]:
        keep[start] = False
        start += 1
    while end >= start and blank[end]:
        keep[end] = False
        end -= 1
    for position in range(start + 1, end + 1):
        if blank[position] and blank[position - 1]:
            keep[position] = False
    return keep


def _clean_line(plan: FieldPlan, lines: LinePlan, line: str, timeout: float) -> LineOutcome | None:
    """One line through the plan's line steps (None: the text must run whole)."""
    steps, gate = plan.steps, plan.gate
    prefix, forced = lines.prefix, lines.forced
    value = line
    changed = inside = 0
    blank = False
    mask = (gate(value) | forced) & prefix
    try:
        while mask:
            low = mask & -mask
            mask ^= low
            _, _, _, skip, _, judge, rule, wakes, extractor = steps[low.bit_length() - 1]
            if judge is not None:
                if low & lines.anchored:
                    if judge.alphabet is not None and not judge.alphabet(value):
                        inside |= low
                elif (skip is None or not skip(value)) and judge.found(value, timeout):
                    return None  # the text's decision: it runs whole
                continue
            if extractor is not None:
                if (skip is None or not skip(value)) and extractor.found(
                    value, timeout
                ) is not None:
                    return None  # an extracted value: the text runs whole
                continue
            assert isinstance(rule, TextRule) and rule.by_line is not None
            if low != lines.blank_bit and skip is not None and skip(value):
                continue
            new = rule.by_line(value, timeout)
            if low == lines.blank_bit:
                if new is None:
                    return None  # the form cannot tell on this line
                blank = not new
            elif new is None:
                # Removed: the later steps never see it, and later anchored verdicts read the
                # text without it.
                later = lines.anchored & -(low << 1)
                return None, changed | low, blank, inside | later, 0, ()
            if new != value:
                if "\n" in new:
                    return None  # a new line break: the lines are no longer these
                value = new
                changed |= low
                later = gate(new) if wakes is None else mask | wakes
                mask = (later | forced) & prefix & -(low << 1)
    except TimeoutError:
        return None  # the text runs whole, under its own limit
    facts = lines.facts
    line_facts = () if facts is None else facts[6].line_facts(value)  # type: ignore[union-attr]
    return value, changed, blank, inside, gate(value) & ~prefix, line_facts


def _enqueue(waiting: list[list[int]], row: int, mask: int) -> None:
    while mask:
        low = mask & -mask
        mask ^= low
        waiting[low.bit_length() - 1].append(row)


def _rewrite_all(rule: TextRule, texts: list[str], timeout: float) -> list[str | None]:
    """Each text rewritten (None: it ran past the time limit on its own)."""
    if rule.joined is not None and len(texts) > 1:
        return sub_each(rule.joined, rule.rewrite, texts, timeout)
    out: list[str | None] = []
    for text in texts:
        try:
            out.append(rule.rewrite(text, timeout))
        except TimeoutError:
            out.append(None)
    return out


def _search_all(rule: VerdictRule, texts: list[str], timeout: float) -> list[bool | None]:
    """For each text, whether the rule's pattern occurs (None: it ran past the limit)."""
    if rule.joined is not None and len(texts) > 1:
        return search_each(rule.joined, rule.found, texts, timeout)
    out: list[bool | None] = []
    for text in texts:
        try:
            out.append(rule.found(text, timeout))
        except TimeoutError:
            out.append(None)
    return out
