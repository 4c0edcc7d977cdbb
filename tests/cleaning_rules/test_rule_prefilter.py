"""The prefilter: it may only skip a text that the pattern cannot match."""

from __future__ import annotations

import pytest
import regex

from cleaning_rules.plan import trigger_gate
from cleaning_rules.prefilter import (
    Trigger,
    pattern_prefilter,
    pattern_trigger,
    required_strings,
    strings_prefilter,
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("abc", {"abc"}),
        (r"\d{4}年\d{1,2}月", {"年"}),
        (r"ab?c", {"a"}),  # b is optional: neither "ab" nor "abc" is required
        (r"abcd*", {"abc"}),
        (r"abc+d", {"abc"}),
        (r"x{2}yz", {"yz"}),
        (r"\x1b\[[0-?]*m", {"\x1b["}),
        (r"\.\$", {".$"}),
        (r"a(?:bcd)?e", {"a"}),
        (r"(?<=\d)\s*克", {"克"}),
        (r"[]x]yz", {"]yz", "xyz"}),
        (r"[mM][gG]", {"mg", "mG", "Mg", "MG"}),
        (r"\p{Han}+药", {"药"}),
        (r"毫克|mg", {"毫克", "mg"}),
        (r"(?:kg|公斤)x", {"kg", "公斤"}),
        (r"[\u202a-\u202c]", {"\u202a", "\u202b", "\u202c"}),
        (r"(?P<y>\d{4})年", {"年"}),
        (r"(?i:ab)c", {"c"}),
        (r"a|\d", None),  # a branch that requires nothing
        (r"x{e<=1}", None),  # fuzzy matching is not modelled
        (r"(x)?(?(1)a|b)", None),  # a conditional
        (r"\d+", None),
        (r"[a-z]", None),
        (r"[^abc]", None),
    ],
)
def test_required_strings(pattern: str, expected: set[str] | None) -> None:
    found = required_strings(regex.compile(pattern))
    assert (None if found is None else set(found)) == expected


def test_verbose_patterns_get_no_prefilter() -> None:
    assert required_strings(regex.compile("a b c", regex.VERBOSE)) is None
    assert required_strings(regex.compile("abc", regex.MULTILINE)) == {"abc"}


@pytest.mark.parametrize(
    "pattern",
    [
        r"ab?c",
        r"x(?:yz)*w",
        r"(?<!\d)\d{4}\s?年",
        r"colou?r",
        r"a\.?b",
        r"[ab]+c{0,2}d",
        r"(?i)Kelvin",
        r"(?i)straße",
        r"hs|h\.s\.",
        r"[\u200b\u200c]|\u200d(?!x)",
    ],
)
def test_prefilter_never_skips_a_match(pattern: str) -> None:
    compiled = regex.compile(pattern)
    cannot_match = pattern_prefilter(compiled)
    texts = [
        "ac", "abc", "xw", "xyzyzw", "2024年", "2024 年", "color", "ab", "a.b", "aad", "cd",
        "KELVIN", "\u212aelvin", "STRASSE", "Straße", "HS", "h.s.", "a\u200cb", "\u200dy",
    ]  # fmt: skip
    for text in texts:
        if compiled.search(text) is not None:
            assert cannot_match is None or not cannot_match(text), (pattern, text)


def test_strings_prefilter_ignoring_case() -> None:
    cannot_match = strings_prefilter(["bid", "qd"], ignore_case=True)
    assert cannot_match is not None
    assert not cannot_match("阿莫西林 BID")
    assert cannot_match("阿莫西林")


def test_a_dozen_strings_are_each_looked_for() -> None:
    cannot_match = strings_prefilter(["每天2次", "每日3次", "一日二次", "每晚1次", "一日4次"])
    assert cannot_match is not None
    assert cannot_match("每日两回")
    assert cannot_match("每天 2次")  # every character of a needle, but not the needle
    assert not cannot_match("一日4次")


def test_many_strings_become_a_character_test() -> None:
    strings = [f"第{n}条" for n in "一二三四五六七八九十"] + ["附件", "附表", "附录"]
    cannot_match = strings_prefilter(strings)
    assert cannot_match is not None
    assert cannot_match("本合同")
    assert not cannot_match("第三条")
    assert not cannot_match("条款")  # a character test: 条 is there, though no needle is


def test_a_requirement_of_white_space_gives_way() -> None:
    # A line break is in most long texts; the page mark is the better needle.
    assert required_strings(regex.compile(r"\n\s*页")) == {"页"}


@pytest.mark.parametrize(
    ("pattern", "flags", "text", "can_match"),
    [
        (r"^\s*$", 0, "  \t", True),
        (r"^\s*$", 0, " x ", False),
        (r"^\s*$", 0, "\n", True),  # $ matches before a final newline
        (r"^(?:\d|mg)*$", 0, "5mg", True),
        (r"^(?:\d|mg)*$", 0, "5mg 阿莫西林", False),
        (r"^(?:测试|test)$", regex.IGNORECASE, "TEST", True),
        (r"^(?:测试|test)$", regex.IGNORECASE, "te\u017ft", True),  # the long s folds to s
        (r"^(?:测试|test)$", regex.IGNORECASE, "testy", False),
        (r"^[\p{N}\p{P}]+$", 0, "１２，", True),  # noqa: RUF001 (full-width digits and comma)
        (r"^[\p{N}\p{P}]+$", 0, "12a", False),
    ],
)
def test_alphabet_of_an_anchored_pattern(
    pattern: str, flags: int, text: str, can_match: bool
) -> None:
    compiled = regex.compile(pattern, flags)
    cannot_match = pattern_prefilter(compiled)
    assert cannot_match is not None
    assert (compiled.search(text) is not None) == can_match
    assert cannot_match(text) is not can_match
    assert cannot_match(text) is not can_match  # answered again from what it remembers


@pytest.mark.parametrize("pattern", [r"^.*$", r"^a|b$", r"(?m)^a$", r"^\Xa$", r"^a$\n"])
def test_no_alphabet_when_the_characters_cannot_be_listed(pattern: str) -> None:
    # Any character (.), not anchored at both ends, line anchors, graphemes: no test.
    cannot_match = pattern_prefilter(regex.compile(pattern))
    assert cannot_match is None or not cannot_match("zzz a")


def test_trigger_of_a_case_insensitive_rule_covers_every_case_folding() -> None:
    trigger = pattern_trigger(regex.compile("kg", regex.IGNORECASE))
    assert trigger is not None and trigger.fold
    gate = trigger_gate([trigger])
    assert gate("5 KG") == gate("5 kg") == gate("5 \u212ag") == 1  # K, k, the Kelvin sign
    assert gate("5 公斤") == 0
    assert trigger.absent("5 公斤") and not trigger.absent("5 \u212ag")


def test_gate_bits_follow_the_rules_that_can_apply() -> None:
    gate = trigger_gate(
        [Trigger(frozenset("元")), None, Trigger(nonascii=True), Trigger(frozenset("\x1b"))]
    )
    assert gate("abc") == 0b0010  # the rule without a trigger always may
    assert gate("100元") == 0b0111
    assert gate("\x1b[0m") == 0b1010


def test_a_long_text_is_gated_line_by_line_with_the_same_bits() -> None:
    triggers = [
        Trigger(frozenset("元")),
        Trigger(frozenset("\n")),
        Trigger(nonascii=True),
        Trigger(frozenset("_")),
    ]
    gate, reference = trigger_gate(triggers), trigger_gate(triggers)
    clause = "第一条 租金为每月____元。"
    short_lines = "\n".join(["plain ascii line"] * 40)
    texts = [
        short_lines,  # ascii lines only: the line break's bit, nothing else
        short_lines + "\n" + clause,  # a clause at the end wakes the others
        clause + "\n" + short_lines,  # ... and at the start, after its lines were remembered
        "x" * 300 + "\n" + "y" * 300,  # lines too long to remember
        "z" * 600,  # long, one line
    ]
    for text in texts * 2:  # the second time, lines come from what the gate remembered
        expected = 0
        for char in set(text):
            expected |= reference(char)
        assert gate(text) == expected, text[:40]
    assert gate(short_lines) == 0b0010
    assert gate(short_lines + "\n" + clause) == 0b1111
    assert gate("z" * 600) == 0
