"""Every golden example of every shipped pack, one test per rule so a failure names it."""

from __future__ import annotations

import pytest

from cleaning_rules.engine import available_packs, load_packs
from cleaning_rules.examples import check_packs, check_rule
from cleaning_rules.pack import LoadedPack
from cleaning_rules.rules import ExtractionRule, VerdictRule

SHIPPED = load_packs(available_packs())
RULES = [
    pytest.param(pack, index, id=spec.id)
    for pack in SHIPPED.packs
    for index, spec in enumerate(pack.spec.rules)
]


@pytest.mark.parametrize(("pack", "index"), RULES)
def test_rule_examples(pack: LoadedPack, index: int) -> None:
    failures = check_rule(pack, index)
    assert not failures, "\n".join(map(str, failures))


@pytest.mark.parametrize(("pack", "index"), RULES)
def test_rule_has_negative_example(pack: LoadedPack, index: int) -> None:
    # A rule without an example it must leave alone has never been shown not to over-match.
    examples = pack.spec.rules[index].examples
    assert any(
        e.out is None and e.expected_verdict == "keep" and e.extracted is None for e in examples
    )


# Every example text of every rule, and all of them joined: a prefilter is checked against
# texts written for other rules too, not only against its own examples.
ALL_TEXTS = [
    text
    for pack in SHIPPED.packs
    for spec in pack.spec.rules
    for example in spec.examples
    for text in (example.text, example.expected_text)
]
ALL_TEXTS.append(" ".join(ALL_TEXTS))


@pytest.mark.parametrize(("pack", "index"), RULES)
def test_prefilter_never_skips_a_match(pack: LoadedPack, index: int) -> None:
    rule = pack.compiled[index]
    for text in ALL_TEXTS:
        if rule.skip is None or not rule.skip(text):
            continue
        if isinstance(rule, VerdictRule | ExtractionRule):
            assert rule.pattern.search(text) is None, text
        else:
            assert rule.rewrite(text, None) == text, text


def test_shipped_packs() -> None:
    assert set(SHIPPED.pack_names) == {"common", "finance", "legal", "logs", "medical"}
    assert sum(len(pack.compiled) for pack in SHIPPED.packs) >= 40
    assert check_packs() == []


@pytest.mark.parametrize(("pack", "index"), RULES)
def test_trigger_and_introduced_characters_hold(pack: LoadedPack, index: int) -> None:
    # The engine skips a rule whose trigger is absent, and after a change it wakes later rules
    # by the characters a rule introduces: both must hold on every text.
    rule = pack.compiled[index]
    for text in ALL_TEXTS:
        if isinstance(rule, VerdictRule | ExtractionRule):
            if rule.trigger is not None and rule.trigger.absent(text):
                assert rule.pattern.search(text) is None, text
            continue
        out = rule.rewrite(text, None)
        if rule.trigger is not None and rule.trigger.absent(text):
            assert out == text, text
        if rule.introduces is not None:
            assert set(out) <= set(text) | rule.introduces, text
