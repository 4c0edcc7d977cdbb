"""Patterns rewritten to run over separator-joined values: the same result on every value."""

from __future__ import annotations

import random

import pytest
import regex

from cleaning_rules.joined import (
    CHUNK_VALUES,
    SEPARATOR,
    chunks,
    joined_pattern,
    search_each,
    search_joined,
    sub_each,
    sub_joined,
)
from cleaning_rules.rules import substitution

PATTERNS = [
    (r"^\s*$", 0),
    (r"^a", 0),
    (r"b$", 0),
    (r"^(?:[^\r\n]*+\r(?!\n))+", regex.MULTILINE),
    (r"a.b", 0),
    (r"a.b", regex.DOTALL),
    (r"\S+", 0),
    (r"\W", 0),
    (r"\D+", 0),
    (r"\P{L}+", 0),
    (r"[^ab]+", 0),
    (r"(?<![a-z])ab(?![a-z])", regex.IGNORECASE),
    (r"(?<=\d)\s*x", 0),
    (r"\bab\b", 0),
    (r"(a)\1", 0),
    (r"(?P<x>b)(?P=x)", 0),
    (r"x*", 0),
    (r"\Aa|b\Z", 0),
    (r"(?i:AB)c", 0),
    (r"[\u00c2-\u00c3][\u0080-\u00bf]", 0),
    (r"$", 0),
    (r"(?<!^)a", regex.MULTILINE),
]
ALPHABET = ["a", "b", "x", "1", " ", "\n", "\r", "\t", "é", "中", "Â", "\u0080", "-"]


def texts(seed: int, count: int = 60) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(0, 8))) for _ in range(count)]


@pytest.mark.parametrize(("source", "flags"), PATTERNS)
def test_joined_sub_and_search_equal_each_value_alone(source: str, flags: int) -> None:
    pattern = regex.compile(source, flags)
    joined = joined_pattern(pattern)
    assert joined is not None, source
    values = texts(len(source))
    rewrite = substitution(pattern, "<\\g<0>>")
    alone = [rewrite(value, None) for value in values]
    assert sub_joined(substitution(joined, "<\\g<0>>"), values, None) == alone
    found = [pattern.search(value) is not None for value in values]
    assert search_joined(joined, values, None) == found


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        ("a b", regex.VERBOSE),
        (r"\Ga", 0),
        (r"(a)?(?(1)b|c)", 0),
        (r"(?:ab){e<=1}", 0),
        (r"(?m:^a)", 0),
        (r"\X", 0),
        (r"[\S]", 0),  # a class that holds the separator through a member
        ("a\ufdd0", 0),
    ],
)
def test_patterns_it_cannot_model_run_value_by_value(source: str, flags: int) -> None:
    assert joined_pattern(regex.compile(source, flags)) is None


def test_a_value_holding_the_separator_runs_alone() -> None:
    pattern = regex.compile("a")
    rewrite = substitution(pattern, "b")
    joined = substitution(joined_pattern(pattern), "b")  # type: ignore[arg-type]
    values = ["a", f"x{SEPARATOR}a", "aa"]
    assert sub_joined(joined, values, None) is None
    assert sub_each(joined, rewrite, values, None) == ["b", f"x{SEPARATOR}b", "bb"]


def test_a_value_that_runs_away_alone_is_the_only_one_timed_out() -> None:
    # The chunk runs past the limit; run again value by value, only the runaway value does.
    slow = regex.compile(r"(a+)+$")
    joined = joined_pattern(slow)
    assert joined is not None
    values = ["aab", "b", "a" * 1000 + "b", "aa"]

    def alone(text: str, limit: float | None) -> bool:
        return slow.search(text, timeout=limit) is not None

    assert search_each(joined, alone, values, 0.02) == [False, False, None, True]
    rewrite = substitution(slow, "!")
    assert sub_each(substitution(joined, "!"), rewrite, values, 0.02) == ["aab", "b", None, "!"]


def test_chunks_bound_values_and_characters() -> None:
    values = ["x" * 10] * (CHUNK_VALUES + 5) + ["y" * 20_000, "z"]
    ranges = chunks(values)
    assert ranges[0] == (0, CHUNK_VALUES)
    assert (CHUNK_VALUES + 5, CHUNK_VALUES + 6) in ranges  # a long value has a chunk of its own
    assert [i for start, end in ranges for i in range(start, end)] == list(range(len(values)))
