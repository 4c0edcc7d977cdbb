"""Standard-library twins of rule patterns: only where provably safe, and always the same result."""

from __future__ import annotations

import importlib.util
import random
import sys
import time
from pathlib import Path

import pytest
import regex

from cleaning_rules.actions import MapRule, table_pattern
from cleaning_rules.engine import available_packs, load_packs
from cleaning_rules.rules import (
    CompiledRule,
    ExtractionRule,
    RuleSpec,
    TextRule,
    VerdictRule,
    flag_bits,
)
from cleaning_rules.stdlib_re import TWIN_LENGTH, stdlib_twin, twin_reads
from tests.cleaning_rules.conftest import OVERLAPPING, WritePack

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rules_throughput.py"

# Patterns whose twin must exist and agree with regex on every text below, flags included.
TWINNED = [
    (r"\d+", 0),
    (r"x*|\s*", 0),  # empty matches: both modules step past them alike
    (r"(?<!\d)\d{4}\s?年", 0),
    (r"\bab\b", 0),
    (r"\Bb", 0),
    (r"a.b", 0),
    (r"a.b", regex.DOTALL),
    (r"^\s*$", regex.MULTILINE),
    (r"[^\W\d]+", 0),
    (r"(?<![a-z0-9_])q\.?(\d{1,2})h", regex.IGNORECASE),
    (r"k+", regex.IGNORECASE),
    (r"(?P<y>\d{4})([/.-])\d\2", 0),
    (r"(?>\n[ \t]++at [^\n]++){2,}", 0),
    (r"\w+", regex.ASCII),
    (r"(?<![^\W\p{Han}])iv(?![^\W\p{Han}])", regex.IGNORECASE),  # a class re cannot read
    (r"第(?:[ \t]+(\d+)[ \t]*|(\d+)[ \t]+)(?=[编章节条款项目])", 0),
]
TEXTS = [
    "",
    "ab a b abc",
    "2024年3月5日 2024-03-05 2024 年",
    "q8h Q12H q.8h 静脉iv IV期 ivy",
    "K\u212a k \u017f s \u0131 i \u0130",  # Kelvin sign, long s, dotless and dotted i
    "\u0660\u0661\u0662 \u09e6\u09e7 ٣",  # Arabic-Indic and Bengali digits
    "\x1c\x1d\x1e\x1f \u00a0\u2028\u3000 x",  # separators re calls space and regex does not
    "a\nb a\rb\n\n  \n",
    "\n\tat a.b(C.java)\n\tat c.d(E.java)",
    "第 12 条 第3 款 第 4项",
    "\u0301e\u0301 ab\u0301c",  # combining marks: word characters in regex, not in re
]


@pytest.mark.parametrize(("source", "flags"), TWINNED)
def test_twin_matches_as_regex_does(source: str, flags: int) -> None:
    pattern = regex.compile(source, flags)
    twin = stdlib_twin(pattern)
    assert twin is not None
    for text in TEXTS:
        assert [m.span() for m in twin.finditer(text)] == [
            m.span() for m in pattern.finditer(text)
        ], text
        assert [m.groups() for m in twin.finditer(text)] == [
            m.groups() for m in pattern.finditer(text)
        ]


@pytest.mark.parametrize(
    ("source", "flags"),
    [
        (r"(a+)+$", 0),  # the lint check flags it: it must keep regex's time limit
        (r"(a|aa)+$", 0),
        (r"\p{Han}+", 0),  # regex-only syntax
        (r"[[a-z]--[aeiou]]", regex.VERSION1),
        (r"(?i)abc", 0),
        (r"(?<=a+)b", 0),  # a variable-width lookbehind does not compile in re
        (r"(ab){e<=1}", 0),
        (r"(a)\1", regex.IGNORECASE),
        (r"a b # comment", regex.VERBOSE),
        (r"\N{BLACK STAR}", 0),  # both read it, but nothing proves the same name table
    ],
)
def test_no_twin_without_proof(source: str, flags: int) -> None:
    assert stdlib_twin(regex.compile(source, flags)) is None


def test_twin_reads_short_texts_within_the_bmp_only() -> None:
    assert twin_reads("a" * TWIN_LENGTH)
    assert twin_reads("甲方" * (TWIN_LENGTH // 2))
    assert not twin_reads("a" * (TWIN_LENGTH + 1))
    assert not twin_reads("emoji \U0001f600")


def test_a_rule_the_linter_flags_stays_on_regex_with_its_timeout(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=OVERLAPPING), timeout=0.02)
    (rule,) = ruleset.rules_for("notes", "text")
    assert isinstance(rule, TextRule) and rule.twin is None
    near_miss = "a" * 40 + "b"  # short enough for a twin: without the time limit, hours
    started = time.perf_counter()
    single = ruleset.apply("notes", {"text": near_miss})
    (batched,) = ruleset.apply_batch("notes", [{"text": near_miss}])
    assert time.perf_counter() - started < 2.0
    for result in (single, batched):
        assert (result.verdict, result.rule_id, result.reason) == (
            "quarantine",
            "demo.overlapping",
            "timeout",
        )


def _bench_texts(count: int) -> dict[tuple[str, str], list[str]]:
    """Field values of ``count`` records from the throughput bench's generator, by (entity,
    field)."""
    spec = importlib.util.spec_from_file_location("rules_throughput", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("rules_throughput", bench)
    spec.loader.exec_module(bench)
    entities = bench.entity_fields(SHIPPED)
    texts: dict[tuple[str, str], list[str]] = {}
    for chunk in bench.records(entities, count, count, 11):
        for entity, record in chunk:
            for field in entities[entity]:
                value = record.get(field)
                if isinstance(value, str):
                    texts.setdefault((entity, field), []).append(value)
    return texts


SHIPPED = load_packs(available_packs())


def test_every_shipped_twin_gives_what_regex_gives() -> None:
    """Each rule's output through its twin equals its output through regex, on its examples,
    on generated bench records (the text each rule meets after the rules before it, too) and
    on shuffled pieces of them."""
    specs = {spec.id: spec for pack in SHIPPED.packs for spec in pack.spec.rules}
    rng = random.Random(5)
    twinned = 0
    for (entity, field), values in _bench_texts(3000).items():
        rules = SHIPPED.rules_for(entity, field)
        cleaned = list(values)
        for rule in rules:
            spec = specs[rule.rule_id]
            texts = [example.text for example in spec.examples] + cleaned
            texts += ["".join(rng.sample(text, len(text))) for text in texts[:200]]
            if rule.twin is not None:
                twinned += 1
                # A twin reads no text beyond the BMP (twin_reads): its sets were checked there.
                for text in filter(_within_bmp, texts):
                    assert _through_twin(rule, text) == _through_regex(rule, text), (
                        rule.rule_id,
                        text,
                    )
            if isinstance(rule, TextRule):
                cleaned = [rule.transform(text, None) for text in cleaned]
    assert twinned >= 20  # most shipped patterns have a twin


def _within_bmp(text: str) -> bool:
    return all(char <= "\uffff" for char in text)


def _through_twin(rule: CompiledRule, text: str) -> object:
    assert rule.twin is not None
    return [(m.span(), m.groups()) for m in rule.twin.finditer(text)]


def _through_regex(rule: CompiledRule, text: str) -> object:
    return [(m.span(), m.groups()) for m in _regex_of(rule).finditer(text)]


def _regex_of(rule: CompiledRule) -> regex.Pattern[str]:
    if isinstance(rule, VerdictRule | ExtractionRule):
        return rule.pattern
    assert rule.twin is not None
    spec = next(s for p in SHIPPED.packs for s in p.spec.rules if s.id == rule.rule_id)
    compiled = spec.compiled_pattern()
    if compiled is None:  # a map rule: its pattern is built from its table
        compiled = _map_pattern(spec)
    return compiled


def _map_pattern(spec: RuleSpec) -> regex.Pattern[str]:
    assert isinstance(spec, MapRule)
    return table_pattern(list(spec.table), flag_bits(spec.flags))
