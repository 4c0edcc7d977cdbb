"""What a rule is: its YAML fields (validated with pydantic) and its compiled, runnable form.

Each action (``replace``, ``map``…) subclasses :class:`RuleSpec` in ``actions.py`` and compiles
itself into a :class:`TextRule` (changes the text) or a :class:`VerdictRule` (drops or
quarantines the record). The engine only ever runs those two shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cleaning_rules.prefilter import Trigger
from cleaning_rules.stdlib_re import twin_reads

Verdict = Literal["keep", "drop", "quarantine"]
FlagName = Literal["IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"]

FLAGS: dict[str, int] = {
    "IGNORECASE": regex.IGNORECASE,
    "MULTILINE": regex.MULTILINE,
    "DOTALL": regex.DOTALL,
    "VERBOSE": regex.VERBOSE,
    "ASCII": regex.ASCII,
}

RULE_ID = r"^[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+$"


def flag_bits(names: list[str]) -> int:
    """The ``regex`` flag bits for flag names from YAML."""
    bits = 0
    for name in names:
        bits |= FLAGS[name]
    return bits


def compile_pattern(pattern: str, flags: list[str]) -> regex.Pattern[str]:
    """Compile a pack pattern; a pattern that does not compile raises ValueError for pydantic."""
    try:
        return regex.compile(pattern, flag_bits(flags))
    except regex.error as exc:
        raise ValueError(f"does not compile: {exc.msg} at position {exc.pos}") from exc


class StrictModel(BaseModel):
    """Pack models: unknown keys are errors (a typo must not be ignored), no type coercion
    (YAML reads ``no`` as False and ``1.0`` as a float; quote them)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ExampleSpec(StrictModel):
    """A golden example: ``in`` and the expected ``out`` (omitted: unchanged), ``verdict`` or
    ``extracted``, by the rule's action."""

    model_config = ConfigDict(populate_by_name=True)

    text: str = Field(alias="in", description="The text given to the rule alone.")
    out: str | None = Field(
        default=None, description="The text the rule must produce; omitted: `in` unchanged."
    )
    verdict: Verdict | None = Field(
        default=None,
        description="For drop_record and quarantine rules: the verdict on `in` (default keep).",
    )
    extracted: str | None = Field(
        default=None,
        description="For extract rules: the value written into the rule's `into` field; "
        "omitted: nothing is found in `in`.",
    )

    @property
    def expected_text(self) -> str:
        """The text the rule must produce (the input itself for a negative example)."""
        return self.text if self.out is None else self.out

    @property
    def expected_verdict(self) -> Verdict:
        """The verdict the rule must reach (``keep`` unless stated)."""
        return self.verdict or "keep"


class RuleSpec(StrictModel):
    """Fields every rule has; an action subclass adds ``action`` and its own parameters.

    Field order matters: pydantic validates in declaration order, and the pattern check needs
    ``flags`` already validated.
    """

    verdict: ClassVar[Verdict | None] = None  # None: the action transforms text
    extracts: ClassVar[bool] = False  # True: the action copies a value into a field

    id: str = Field(pattern=RULE_ID, description="Unique id, starting with the pack's name.")
    description: str = Field(
        min_length=1, description="Why the rule exists and what it must leave alone."
    )
    flags: list[FlagName] = Field(default=[], description="Flags of the `regex` module.")
    pattern: str | None = Field(
        default=None,
        description="A pattern in the `regex` module's syntax (version 0); write it in single "
        "quotes.",
    )
    fields: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Narrows the pack's applies_to fields for this rule.",
    )
    examples: list[ExampleSpec] = Field(
        min_length=1,
        description="Golden tests, at least one; include a text the rule must leave alone.",
    )

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "flags" in info.data:
            compile_pattern(value, info.data["flags"])
        return value

    @field_validator("examples")
    @classmethod
    def _examples_fit_action(cls, value: list[ExampleSpec]) -> list[ExampleSpec]:
        for index, example in enumerate(value):
            if example.extracted is not None and not cls.extracts:
                raise ValueError(f"[{index}]: only an extract rule takes 'extracted'")
            if cls.extracts and example.out is not None:
                raise ValueError(
                    f"[{index}]: an extract rule does not change text; use 'extracted'"
                )
            if cls.verdict is None and example.expected_verdict != "keep":
                raise ValueError(
                    f"[{index}]: a text rule cannot give verdict {example.verdict!r}; use 'out'"
                )
            if cls.verdict is not None:
                if example.out is not None:
                    raise ValueError(
                        f"[{index}]: a {cls.verdict} rule does not change text; use 'verdict'"
                    )
                if example.expected_verdict not in ("keep", cls.verdict):
                    raise ValueError(
                        f"[{index}]: verdict must be {cls.verdict!r} or 'keep' for this action"
                    )
        return value

    def compiled_pattern(self) -> regex.Pattern[str] | None:
        """The compiled ``pattern`` with ``flags``, or None when the rule has none."""
        return None if self.pattern is None else compile_pattern(self.pattern, self.flags)

    def build(self) -> CompiledRule:
        """Compile this rule into the form the engine runs."""
        raise NotImplementedError


Replacement = str | Callable[["regex.Match[str] | re.Match[str]"], str]
Rewrite = Callable[[str, float | None], str]
# A text rule's rewrite of one line of a longer text (no line break in it): the new line, or
# None to remove the line.
LineRewrite = Callable[[str, float | None], str | None]


@dataclass(frozen=True, slots=True, eq=False)
class TextRule:
    """A compiled rule that rewrites a field.

    ``rewrite(text, timeout)`` returns the new text; ``skip`` is an optional cheap test that is
    True only when the rule cannot change the text (a required literal is absent, the text is
    already normal), so the rewrite can be left out. ``trigger`` (optional) is coarser: the
    characters one of which a text must hold for the rule to change it. ``introduces`` are the
    characters the rewrite may write that were not in its input (None: unknown). ``joined``
    (optional) is the same rewrite over many values joined by a separator (``joined.py``);
    ``twin`` (optional) the rule's pattern in the standard library's ``re``, which ``rewrite``
    uses on short texts (``stdlib_re.py``).

    ``by_line`` (optional) says that the rule rewrites a text of several lines as it rewrites
    each line on its own: the text's rewrite is the lines' ``by_line`` results joined by
    ``\n``, without the lines it removes (None); then, with ``blank_lines``, runs of blank
    lines kept once and those at either end removed, as the whitespace form does. Long texts
    go line by line through the rules that allow it (``plan.py``). ``line_facts`` and
    ``with_facts`` (optional) say that the rule rewrites a text as ``with_facts(text, facts)``,
    the facts being those its lines give, in line order (``forms.py``).
    """

    rule_id: str
    fields: frozenset[str] | None
    rewrite: Rewrite
    skip: Callable[[str], bool] | None = None
    trigger: Trigger | None = None
    introduces: frozenset[str] | None = None
    joined: Rewrite | None = None
    twin: re.Pattern[str] | None = None
    by_line: LineRewrite | None = None
    blank_lines: bool = False
    line_facts: Callable[[str], tuple[object, ...]] | None = None
    with_facts: Callable[[str, Sequence[object]], str] | None = None

    verdict: ClassVar[None] = None
    reason: ClassVar[None] = None

    def transform(self, text: str, timeout: float | None) -> str:
        """The rewritten text; raises TimeoutError when a regex runs past ``timeout`` s."""
        if self.skip is not None and self.skip(text):
            return text
        return self.rewrite(text, timeout)


def substitution(
    pattern: regex.Pattern[str], replacement: Replacement, twin: re.Pattern[str] | None = None
) -> Rewrite:
    """A rewrite that substitutes every match of ``pattern``, under the timeout; with ``twin``
    (the same pattern in ``re``, ``stdlib_re.py``), a short text goes through the twin."""
    sub = pattern.sub
    if twin is None:
        # Positional (repl, string, count, pos, endpos, concurrent, timeout): regex parses
        # keyword arguments through a slower path, about a microsecond a call on a short field.
        return lambda text, timeout: sub(replacement, text, 0, None, None, None, timeout)
    twin_sub = twin.sub

    def rewrite(text: str, timeout: float | None) -> str:
        # No time limit on the twin: it only exists for patterns that cannot run away, and
        # only reads short texts (stdlib_re.py).
        if twin_reads(text):
            return twin_sub(replacement, text)
        return sub(replacement, text, 0, None, None, None, timeout)

    return rewrite


def first_match(
    pattern: regex.Pattern[str],
    twin: re.Pattern[str] | None,
    text: str,
    timeout: float | None,
) -> regex.Match[str] | re.Match[str] | None:
    """The first match of ``pattern`` in ``text``, through its ``re`` twin on a short text
    (``stdlib_re.py``); TimeoutError past ``timeout`` seconds."""
    if twin is not None and twin_reads(text):
        return twin.search(text)
    # Positional (string, pos, endpos, concurrent, partial, timeout): see substitution.
    return pattern.search(text, None, None, None, False, timeout)


@dataclass(frozen=True, slots=True, eq=False)
class VerdictRule:
    """A compiled rule that drops or quarantines the record when ``pattern`` is found."""

    rule_id: str
    fields: frozenset[str] | None
    pattern: regex.Pattern[str]
    verdict: Literal["drop", "quarantine"]
    reason: str
    skip: Callable[[str], bool] | None = None  # True only when the pattern cannot match
    trigger: Trigger | None = None  # characters one of which every match holds
    joined: regex.Pattern[str] | None = None  # the pattern over separator-joined values
    twin: re.Pattern[str] | None = None  # the pattern in re, for short texts (stdlib_re.py)
    # Reading a text of several lines (plan.py): found in it when found in one of its lines
    # (by_line), or, for a pattern anchored at both ends, never found in a text holding a line
    # that ``alphabet`` is True on (a character that no atom of the pattern matches).
    by_line: bool = False
    alphabet: Callable[[str], bool] | None = None

    def matches(self, text: str, timeout: float | None) -> bool:
        """Whether the rule fires on ``text``; raises TimeoutError past ``timeout`` s."""
        if self.skip is not None and self.skip(text):
            return False
        return self.found(text, timeout)

    def found(self, text: str, timeout: float | None) -> bool:
        """Whether ``pattern`` occurs in ``text`` (no prefilter); TimeoutError past ``timeout``."""
        return first_match(self.pattern, self.twin, text, timeout) is not None


@dataclass(frozen=True, slots=True, eq=False)
class ExtractionRule:
    """A compiled rule that copies a value out of a field into the field ``into``: the first
    match of ``pattern``, expanded through ``template``. The text is left as it is."""

    rule_id: str
    fields: frozenset[str] | None
    pattern: regex.Pattern[str]
    into: str
    template: str
    skip: Callable[[str], bool] | None = None  # True only when the pattern cannot match
    trigger: Trigger | None = None  # characters one of which every match holds
    twin: re.Pattern[str] | None = None  # the pattern in re, for short texts (stdlib_re.py)
    by_line: bool = False  # the first match in a text is the first in the first line with one

    verdict: ClassVar[None] = None
    reason: ClassVar[None] = None

    def extract(self, text: str, timeout: float | None) -> str | None:
        """The value found in ``text`` (None: no match); TimeoutError past ``timeout`` s."""
        if self.skip is not None and self.skip(text):
            return None
        return self.found(text, timeout)

    def found(self, text: str, timeout: float | None) -> str | None:
        """:meth:`extract` without the prefilter."""
        match = first_match(self.pattern, self.twin, text, timeout)
        return None if match is None else match.expand(self.template)


CompiledRule = TextRule | VerdictRule | ExtractionRule
