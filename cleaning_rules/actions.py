"""The rule actions, one small class each, registered under the name YAML uses in ``action``.

Adding an action is adding a class here with ``@register_action``: the pack schema (a union
discriminated by ``action``) is built from this registry, so nothing else changes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import Any, ClassVar, Literal, TypeVar, get_args

import regex
from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cleaning_rules.forms import FORMS
from cleaning_rules.joined import (
    agrees,
    atom_runs,
    joined_pattern,
    line_local,
    search_joined,
    sub_joined,
)
from cleaning_rules.prefilter import (
    pattern_alphabet,
    pattern_prefilter,
    pattern_trigger,
    strings_prefilter,
    strings_trigger,
)
from cleaning_rules.rules import (
    CompiledRule,
    ExtractionRule,
    Replacement,
    Rewrite,
    RuleSpec,
    TextRule,
    VerdictRule,
    compile_pattern,
    flag_bits,
    substitution,
)
from cleaning_rules.stdlib_re import stdlib_twin

ACTIONS: dict[str, type[RuleSpec]] = {}

_Spec = TypeVar("_Spec", bound=type[RuleSpec])


def register_action(cls: _Spec) -> _Spec:
    """Register a rule class under the single value of its ``action: Literal[...]`` field."""
    (name,) = get_args(cls.model_fields["action"].annotation)
    if name in ACTIONS:
        raise ValueError(f"rule action {name!r} registered twice")
    ACTIONS[name] = cls
    return cls


def _fields(spec: RuleSpec) -> frozenset[str] | None:
    return None if spec.fields is None else frozenset(spec.fields)


def _samples(spec: RuleSpec) -> list[str]:
    return [text for example in spec.examples for text in (example.text, example.expected_text)]


def _joined_rewrite(
    spec: RuleSpec, pattern: regex.Pattern[str], replacement: Replacement, rewrite: Rewrite
) -> Rewrite | None:
    """The rewrite over separator-joined values, if the pattern can be rewritten for it and
    reproduces the rule's examples that way."""
    joined = joined_pattern(pattern)
    if joined is None:
        return None
    batch = substitution(joined, replacement)
    fits = agrees(_samples(spec), rewrite, lambda values, limit: sub_joined(batch, values, limit))
    return batch if fits else None


def _checked_twin(
    spec: RuleSpec, pattern: regex.Pattern[str], replacement: Replacement | None
) -> re.Pattern[str] | None:
    """The pattern's ``re`` twin (``stdlib_re.py``) if it has one and gives the same result as
    ``regex`` on the rule's examples: substitutions, or (``replacement`` None) searches."""
    twin = stdlib_twin(pattern)
    if twin is None:
        return None
    for text in _samples(spec):
        try:
            if replacement is None:
                found, expected = twin.search(text), pattern.search(text)
                same = (found is None) == (expected is None) and (
                    found is None or found.span() == expected.span()  # type: ignore[union-attr]
                )
            else:
                same = twin.sub(replacement, text) == pattern.sub(replacement, text)
        except (re.error, regex.error, IndexError):
            return None  # a template re reads differently
        if not same:
            return None
    return twin


def _joined_search(spec: RuleSpec, rule: VerdictRule) -> regex.Pattern[str] | None:
    """The verdict pattern over separator-joined values (see :func:`_joined_rewrite`)."""
    joined = joined_pattern(rule.pattern)
    if joined is None:
        return None
    fits = agrees(
        _samples(spec), rule.found, lambda values, limit: search_joined(joined, values, limit)
    )
    return joined if fits else None


@register_action
class ReplaceRule(RuleSpec):
    """Substitute every match of ``pattern`` by ``replacement`` (``\\1``, ``\\g<name>``)."""

    action: Literal["replace"]
    pattern: str
    replacement: str = Field(description="Replacement template: \\1 and \\g<name> are groups.")

    @field_validator("replacement")
    @classmethod
    def _template_valid(cls, value: str, info: ValidationInfo) -> str:
        return _valid_template(value, info, "replacement")

    def build(self) -> CompiledRule:
        pattern = compile_pattern(self.pattern, self.flags)
        twin = _checked_twin(self, pattern, self.replacement)
        rewrite = substitution(pattern, self.replacement, twin)
        return _pattern_rule(
            self,
            pattern,
            rewrite,
            # The template with every group empty: the characters it writes of its own.
            frozenset(_probe_match(pattern).expand(self.replacement)),
            joined=_joined_rewrite(self, pattern, self.replacement, rewrite),
            twin=twin,
            by_line=rewrite if line_local(pattern) else None,
        )


def _pattern_rule(
    spec: RuleSpec,
    pattern: regex.Pattern[str],
    rewrite: Rewrite,
    introduces: frozenset[str],
    **more: Any,
) -> TextRule:
    """The text rule of ``spec``, prefiltered and triggered by its ``pattern``."""
    return TextRule(
        spec.id,
        _fields(spec),
        rewrite,
        pattern_prefilter(pattern),
        pattern_trigger(pattern),
        introduces,
        **more,
    )


@register_action
class RemoveLinesRule(RuleSpec):
    """Remove every line that ``pattern`` matches in full, with its line break."""

    action: Literal["remove_lines"]
    pattern: str = Field(
        description="Matched against each line in full (lines end at \\n, which they exclude)."
    )

    def build(self) -> CompiledRule:
        pattern = compile_pattern(self.pattern, self.flags)
        # Any line the pattern matches in full is a match of this one: one search tells
        # whether a text has a line to remove (most have none).
        any_line = compile_pattern(f"^(?:{self.pattern})$", [*self.flags, "MULTILINE"])
        fullmatch, search = pattern.fullmatch, any_line.search

        def kept(line: str, timeout: float | None) -> str | None:
            # Positional (string, pos, endpos, concurrent, partial, timeout): see substitution.
            return None if fullmatch(line, None, None, None, False, timeout) else line

        def rewrite(text: str, timeout: float | None) -> str:
            if search(text, None, None, None, False, timeout) is None:
                return text
            lines = (kept(line, timeout) for line in text.split("\n"))
            return "\n".join(line for line in lines if line is not None)

        return _pattern_rule(self, pattern, rewrite, frozenset(), by_line=kept)


def _valid_template(template: str, info: ValidationInfo, what: str) -> str:
    """``template`` when it expands against the rule's pattern (every group it names exists),
    else a ValueError for pydantic naming ``what`` it is."""
    if "pattern" in info.data and "flags" in info.data:
        compiled = compile_pattern(info.data["pattern"], info.data["flags"])
        try:
            _probe_match(compiled).expand(template)
        except (regex.error, IndexError) as exc:
            raise ValueError(f"invalid {what} template: {exc}") from exc
    return template


def _probe_match(pattern: regex.Pattern[str]) -> regex.Match[str]:
    """A match with the same numbered and named groups as ``pattern``, all empty.

    regex checks a replacement template only when something matches, so a bad group
    reference would otherwise surface on the first matching record instead of at load time.
    """
    names = {number: name for name, number in pattern.groupindex.items()}
    groups = "".join(
        f"(?P<{names[number]}>)" if number in names else "()"
        for number in range(1, pattern.groups + 1)
    )
    match = regex.match(groups, "")
    assert match is not None  # empty groups always match the empty string
    return match


# A word character of a script written with spaces between words (Latin letters, digits, _).
# Chinese and Japanese run words together, so "阿莫西林bid" still holds the word "bid", while
# "bidding", "2bid" and "bid_x" do not; \b cannot tell, since it counts 林 as a word character.
WORDISH = r"[^\W\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]"
_WORDISH = regex.compile(WORDISH)


def table_pattern(keys: list[str], flags: int) -> regex.Pattern[str]:
    """One alternation of ``keys``, longest first, with a word boundary on each side of a key
    that starts or ends with a ``WORDISH`` character (a key edge in Han needs none)."""
    branches: list[tuple[bool, bool, list[str]]] = []
    for key in sorted(keys, key=lambda k: (-len(k), k)):
        left = _WORDISH.match(key[0]) is not None
        right = _WORDISH.match(key[-1]) is not None
        # Consecutive keys with the same boundaries share one group; merging further would
        # break longest-first order across groups.
        if branches and branches[-1][:2] == (left, right):
            branches[-1][2].append(regex.escape(key))
        else:
            branches.append((left, right, [regex.escape(key)]))
    parts = [
        ("(?<!" + WORDISH + ")" if left else "")
        + "(?:"
        + "|".join(escaped)
        + ")"
        + ("(?!" + WORDISH + ")" if right else "")
        for left, right, escaped in branches
    ]
    return regex.compile("|".join(parts), flags)


_MAP_FLAGS = ("IGNORECASE", "ASCII")
_REMEMBERED_MATCHES = 4096
_REMEMBERED_LENGTH = 64


def _without_pattern(schema: dict[str, Any]) -> None:
    # A map rule builds its pattern from its table: the JSON Schema leaves the inherited
    # field out, as validation refuses it.
    schema["properties"].pop("pattern", None)


@register_action
class MapRule(RuleSpec):
    """Replace each whole-word occurrence of a ``table`` key by its value (one alternation)."""

    model_config = ConfigDict(json_schema_extra=_without_pattern)

    action: Literal["map"]
    table: dict[str, str] = Field(
        min_length=1, description="Whole-word keys and what they become (longest key first)."
    )

    @field_validator("table")
    @classmethod
    def _keys_distinct(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if "" in value:
            raise ValueError("a table key cannot be empty")
        if "IGNORECASE" in info.data.get("flags", ()):
            seen: dict[str, str] = {}
            for key, expansion in value.items():
                other = seen.setdefault(key.casefold(), key)
                if other != key and value[other] != expansion:
                    raise ValueError(
                        f"keys {other!r} and {key!r} are equal under IGNORECASE "
                        "but map to different values"
                    )
        return value

    @model_validator(mode="after")
    def _no_pattern(self) -> MapRule:
        if self.pattern is not None:
            raise ValueError("a map rule builds its pattern from 'table'; remove 'pattern'")
        # The table is matched literally: flags that change how a pattern is read or what
        # '.', '^' and '$' mean do not apply (VERBOSE would even drop the space in "iv gtt").
        extra = sorted(set(self.flags) - set(_MAP_FLAGS))
        if extra:
            raise ValueError(f"flags {', '.join(extra)} do not apply to a map table")
        return self

    def build(self) -> CompiledRule:
        ignore_case = "IGNORECASE" in self.flags
        fold = str.casefold if ignore_case else str
        lookup = {fold(key): expansion for key, expansion in self.table.items()}

        def expand(match: regex.Match[str] | re.Match[str]) -> str:
            found = match.group()
            return lookup.get(fold(found), found)

        pattern = table_pattern(list(self.table), flag_bits(self.flags))
        skip = strings_prefilter(self.table, ignore_case=ignore_case)
        trigger = strings_trigger(self.table, ignore_case=ignore_case)
        twin = _checked_twin(self, pattern, expand)
        rewrite = substitution(pattern, expand, twin)
        joined = _joined_rewrite(self, pattern, expand, rewrite)
        introduces = frozenset("".join(self.table.values()))
        by_line = rewrite if line_local(pattern) else None
        return TextRule(
            self.id, _fields(self), rewrite, skip, trigger, introduces, joined, twin, by_line
        )


@register_action
class NormalizeRule(RuleSpec):
    """Apply a named normalisation ``form`` to the whole field, or to each ``pattern`` match."""

    action: Literal["normalize"]
    form: str = Field(
        description="A named transform (forms.py), on the whole field or on each match.",
        json_schema_extra={"enum": sorted(FORMS)},
    )

    @field_validator("form")
    @classmethod
    def _form_known(cls, value: str, info: ValidationInfo) -> str:
        form = FORMS.get(value)
        if form is None:
            raise ValueError(f"unknown form {value!r} (known: {', '.join(sorted(FORMS))})")
        if form.needs_pattern and info.data.get("pattern") is None and "pattern" in info.data:
            raise ValueError(f"form {value!r} works on matches: give a 'pattern'")
        return value

    def build(self) -> CompiledRule:
        form = FORMS[self.form]
        pattern = self.compiled_pattern()
        if pattern is None:
            apply, line_form = form.apply, form.by_line
            return TextRule(
                self.id,
                _fields(self),
                lambda text, _: apply(text),
                form.unchanged,
                form.trigger,
                form.introduces,
                by_line=None if line_form is None else lambda line, _: line_form(line),
                blank_lines=form.blank_lines,
                line_facts=form.line_facts,
                with_facts=form.with_facts,
            )

        apply = form.apply
        # Forms are pure, and the matches a rule picks repeat across records (dates, amounts,
        # clause references, units): each short match is transformed once per rule.
        remembered = lru_cache(maxsize=_REMEMBERED_MATCHES)(apply)

        def each_match(match: regex.Match[str] | re.Match[str]) -> str:
            found = match.group()
            return remembered(found) if len(found) <= _REMEMBERED_LENGTH else apply(found)

        skip = form.unchanged if form.local else pattern_prefilter(pattern)
        # A match holds only characters of the text: a text without the form's trigger has
        # no match the form would change.
        trigger = pattern_trigger(pattern) or form.trigger
        twin = _checked_twin(self, pattern, each_match)
        rewrite = substitution(pattern, each_match, twin)
        joined = _joined_rewrite(self, pattern, each_match, rewrite)
        # A match within a line is the same match in the text: any form can apply to it. The
        # runs of one atom (\P{No}+) may cross lines, which a form that applies line by line
        # to the whole text (by_line is the form itself) does not tell from its lines' runs.
        by_line = (
            rewrite
            if line_local(pattern) or (form.by_line is form.apply and atom_runs(pattern))
            else None
        )
        return TextRule(
            self.id, _fields(self), rewrite, skip, trigger, form.introduces, joined, twin, by_line
        )


# A field an extract rule writes: a plain column name, not a lineage column (those start with _).
INTO_FIELD = r"^[a-z][a-z0-9_]*$"


@register_action
class ExtractRule(RuleSpec):
    """Copy the first match of ``pattern`` (through the ``value`` template) into the new field
    ``into``; the text itself is left as it is."""

    extracts = True

    action: Literal["extract"]
    pattern: str
    into: str = Field(
        pattern=INTO_FIELD,
        description="The field the value is written to: a new column, which no pack cleans.",
    )
    value: str = Field(
        default="\\g<0>",
        description="Template of the value: \\g<0> (default) is the whole match, \\1 and "
        "\\g<name> groups.",
    )

    @field_validator("value")
    @classmethod
    def _template_valid(cls, value: str, info: ValidationInfo) -> str:
        return _valid_template(value, info, "value")

    def build(self) -> CompiledRule:
        pattern = compile_pattern(self.pattern, self.flags)
        return ExtractionRule(
            self.id,
            _fields(self),
            pattern,
            self.into,
            self.value,
            pattern_prefilter(pattern),
            pattern_trigger(pattern),
            _checked_twin(self, pattern, None),
            line_local(pattern),
        )


class _VerdictSpec(RuleSpec):
    """Shared shape of the actions that judge a record instead of changing it."""

    verdict: ClassVar[Literal["drop", "quarantine"]]

    pattern: str
    reason: str = Field(min_length=1, description="Why the record is set aside, for people.")

    def build(self) -> CompiledRule:
        pattern = compile_pattern(self.pattern, self.flags)
        rule = VerdictRule(
            self.id,
            _fields(self),
            pattern,
            self.verdict,
            self.reason,
            pattern_prefilter(pattern),
            pattern_trigger(pattern),
            twin=_checked_twin(self, pattern, None),
            by_line=line_local(pattern),
            alphabet=pattern_alphabet(pattern),
        )
        return replace(rule, joined=_joined_search(self, rule))


@register_action
class DropRecordRule(_VerdictSpec):
    """Drop the record (counted under the rule id) when ``pattern`` is found in a field."""

    verdict = "drop"
    action: Literal["drop_record"]


@register_action
class QuarantineRule(_VerdictSpec):
    """Send the record to quarantine with ``reason`` when ``pattern`` is found in a field."""

    verdict = "quarantine"
    action: Literal["quarantine"]
