"""Long texts line by line (plan.py, LinePlan): the same outcomes as the text run whole."""

# Full-width punctuation and letters are what these texts are about.
# ruff: noqa: RUF001

from __future__ import annotations

import random

import pytest
import regex

from cleaning_rules import plan as plans
from cleaning_rules.engine import RuleSet, available_packs, load_packs
from cleaning_rules.forms import FORMS
from cleaning_rules.joined import atom_runs, line_local
from cleaning_rules.parties import contract_parties, declarations, with_declared
from cleaning_rules.plan import FieldPlan, run_column, run_field

from .conftest import WritePack

SHIPPED = load_packs(available_packs())

# Lines of the kinds contracts are made of, and the lines that make a text run whole or test
# the edges of a rule: blank runs, carriage returns, separators, page numbers, marks, blanks.
CLAUSES = [
    "第一条 租赁物",
    "第十二条第三款 乙方应于每月５日前支付租金人民币壹万贰仟元整。",
    "租金为每月______元,合计 ¥1,234.5,预算3万元。",
    "本 合 同 自 双 方 签 字 之 日 起 生 效。",
    "甲方：北京某某科技有限公司",
    "乙方：张三",
    "北京某某科技有限公司应于2024年3月5日前向张三支付租金。",
    "上海华信贸易有限公司（以下简称“丙方”）与王伟（以下简称“丁方”）签订本合同。",
    "签订日期：二〇二四年三月五日，付款日 2024/3/5。",
    'This Agreement is made between Acme Software Ltd. (the "Licensor") and Beta Co., Ltd.',
    "Party A: Shanghai Huaxin Trading Co., Ltd.",
    "Party A shall deliver the goods; see 「附件」 and ＡＢＣ.",
    "Signed: ____________  Date: ______",
    "AT&amp;T &#20013;&#x6587; &nbsp;",
    "面积10²平方米，① 见附件（ＡＢＣ）",
]
ODD_LINES = [
    "",
    " ",
    "\t \u3000",
    "第 1 页 共 3 页",
    "- 2 -",
    "Page 3 of 12",
    "\u200b",
    "line with a carriage return\r",
    "\x1c separator",
    "【草稿】",
    "测试",
    "&#10;",
    "&#13;",
    "Ã©Ã¨ mojibake",
    "  spaced   out  ",
]


def texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        lines = [rng.choice(CLAUSES) for _ in range(rng.randint(6, 14))]
        for _ in range(rng.randint(0, 4)):
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(ODD_LINES))
        out.append("\n".join(lines))
    return out


def body_plan(ruleset: RuleSet, entity: str = "contracts", field: str = "body") -> FieldPlan:
    return {plan.field: plan for plan in ruleset._plan(entity)}[field]


def whole(plan: FieldPlan) -> FieldPlan:
    return plan._replace(lines=None, remembered={})


def test_patterns_that_read_a_text_as_its_lines() -> None:
    local = [r"[^\p{No}\n]+", r"[ \t]?x", r"(?<!\d)\d{4}(?!\d)", r"a.b", r"\S+", r"\bbid\b"]
    crossing = [r"\P{No}+", r"\s?x", r"a\nb", r"[^x]", r"\D", r"\W", r"\Aa", r"a\Z", r"^a", "a$"]
    assert all(line_local(regex.compile(pattern)) for pattern in local)
    assert not any(line_local(regex.compile(pattern)) for pattern in crossing)
    assert line_local(regex.compile("^a$", regex.MULTILINE))
    assert not line_local(regex.compile("a.b", regex.DOTALL))
    # One atom repeated: its runs split at line breaks are its lines' runs.
    runs = [r"\P{No}+", r"[^\p{No}\n]+", r"\d+", r"[]a]+", r"\++"]
    other = [r"[ab]+c", r"(a)+", r"a+b+", r".+", r"\P{No}*"]
    assert all(atom_runs(regex.compile(pattern)) for pattern in runs)
    assert not any(atom_runs(regex.compile(pattern)) for pattern in other)


def test_the_shipped_contract_body_runs_its_rules_up_to_party_names_by_lines() -> None:
    plan = body_plan(SHIPPED)
    assert plan.lines is not None
    ids = [step[2] for step in plan.steps]
    assert ids[plan.lines.count] == "legal.party.names"
    assert plan.lines.facts is plan.steps[plan.lines.count]


@pytest.mark.parametrize("field", ["body", "title"])
def test_by_lines_gives_what_the_whole_text_gives(field: str) -> None:
    plan = body_plan(load_packs(available_packs()), field=field)
    reference = whole(plan)
    samples = texts(seed=3, count=400)
    # About half hold a line that makes them run whole (a mark, a carriage return, mojibake).
    assert sum(plans._by_lines(plan, text, 1.0) is not None for text in samples) > 100
    for text in samples:
        assert run_field(plan, text, 1.0) == run_field(reference, text, 1.0), text
    assert run_column(plan, samples, 1.0) == run_column(reference, samples, 1.0)


def test_a_line_seen_before_is_not_cleaned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = body_plan(load_packs(available_packs()))
    cleaned: list[str] = []
    clean_line = plans._clean_line

    def counting(plan: FieldPlan, lines: plans.LinePlan, line: str, timeout: float):  # type: ignore[no-untyped-def]
        cleaned.append(line)
        return clean_line(plan, lines, line, timeout)

    monkeypatch.setattr(plans, "_clean_line", counting)
    first = "\n".join(CLAUSES)
    second = "\n".join([*CLAUSES[:6], "第九条 新的一行", *CLAUSES[6:]])
    assert plans._by_lines(plan, first, 1.0) is not None
    assert len(cleaned) == len(CLAUSES)
    assert plans._by_lines(plan, second, 1.0) is not None
    assert cleaned[len(CLAUSES) :] == ["第九条 新的一行"]


ANCHORED = r"""
- id: demo.test_record
  description: a whole text that is only a test mark and digits
  action: drop_record
  pattern: '^\s*test\s*\d+\s*$'
  reason: test record
  examples: [{in: "test 1", verdict: drop}, {in: "a test 1"}]
- id: demo.upper
  description: a rule after it, line by line
  action: replace
  pattern: 'x'
  replacement: 'X'
  examples: [{in: x, out: X}]
"""


def test_an_anchored_verdict_reads_the_whole_text(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=ANCHORED))
    plan = body_plan(ruleset, "notes", "text")
    assert plan.lines is not None and plan.lines.anchored == 1
    # Every line within the pattern's alphabet: only the whole text can tell, and it matches.
    matching = "test" + "\n" * 300 + "42"
    assert plans._by_lines(plan, matching, 1.0) is None
    assert ruleset.apply("notes", {"text": matching}).verdict == "drop"
    # One line would match alone, the text does not: kept, by lines.
    kept = "test 1\n" + "x filler line\n" * 30
    assert plans._by_lines(plan, kept, 1.0) is not None
    result = ruleset.apply("notes", {"text": kept})
    assert result.verdict == "keep"
    assert result.record["text"] == kept.replace("x", "X")


RUNAWAY = r"""
- id: demo.overlapping
  description: overlapping branches under a quantifier, on each line
  action: replace
  flags: [MULTILINE]
  pattern: '(a|aa)+$'
  replacement: ''
  examples: [{in: b}]
"""


def test_a_line_that_runs_away_quarantines_the_record(write_pack: WritePack) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=RUNAWAY), timeout=0.02)
    assert body_plan(ruleset, "notes", "text").lines is not None
    text = "filler line\n" * 30 + "a" * 40 + "b\nmore"
    for result in (
        ruleset.apply("notes", {"text": text}),
        ruleset.apply_batch("notes", [{"text": text}, {"text": "ok"}])[0],
    ):
        assert (result.verdict, result.rule_id, result.reason) == (
            "quarantine",
            "demo.overlapping",
            "timeout",
        )


WHITESPACE_PIECES = [" ", "  ", "\t", "\u3000", "\u00a0", "\n", "\n\n\n", "a-b", "中文", "x", ""]
# A line with one of these runs whole: a carriage return starts a line, a separator is
# stripped only at the text's ends.
WHOLE_TEXT_PIECES = ["\r", "\r\n", "\x1c"]


def test_the_whitespace_form_by_lines_gives_what_it_gives_whole(write_pack: WritePack) -> None:
    rules = """
    - id: demo.space
      description: whitespace
      action: normalize
      form: whitespace
      examples: [{in: " a ", out: a}]
    - id: demo.dash
      description: a rule after it
      action: replace
      pattern: '-'
      replacement: '+'
      examples: [{in: "-", out: "+"}]
    """
    plan = body_plan(load_packs(["demo"], write_pack(rules=rules)), "notes", "text")
    reference = whole(plan)
    rng = random.Random(5)
    samples = []
    for _ in range(400):
        pieces = [rng.choice(WHITESPACE_PIECES) for _ in range(30)]
        if rng.random() < 0.3:
            pieces.insert(rng.randrange(len(pieces)), rng.choice(WHOLE_TEXT_PIECES))
        samples.append("".join(pieces[:15]) + "\n" + "filler-line\n" * 20 + "".join(pieces[15:]))
    assert sum(plans._by_lines(plan, text, 1.0) is not None for text in samples) > 200
    for text in samples:
        assert run_field(plan, text, 1.0) == run_field(reference, text, 1.0), repr(text)


@pytest.mark.parametrize("name", [name for name, form in FORMS.items() if form.by_line])
def test_a_form_by_line_joins_to_the_form(name: str) -> None:
    form = FORMS[name]
    assert form.by_line is not None
    rng = random.Random(9)
    alphabet = ["a", "中", "ｂ", "\u0301", "①", "²", "\x07", "\x85", " ", "\u3000", "ﾊﾟ", "\n"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        lines = [form.by_line(line) for line in text.split("\n")]
        if form.blank_lines or None in lines:
            continue  # the whitespace form's blank lines: the test above
        assert form.apply(text) == "\n".join(lines), repr(text)  # type: ignore[arg-type]


def test_party_declarations_of_the_lines_give_the_texts() -> None:
    for text in texts(seed=11, count=200):
        declared = [item for line in text.split("\n") for item in declarations(line)]
        assert with_declared(text, declared) == contract_parties(text)
    # A name declared twice: the first shape to read it wins, whichever line it is on.
    text = 'Acme Ltd. (the "Licensor") signs.\nParty B: Acme Ltd\nAcme Ltd pays.'
    declared = [item for line in text.split("\n") for item in declarations(line)]
    assert with_declared(text, declared) == contract_parties(text)
    assert contract_parties(text).endswith("<PARTY_B> pays.")


REMOVE = r"""
- id: demo.page
  description: page lines
  action: remove_lines
  pattern: '-[ \t]*\d+[ \t]*-'
  examples: [{in: "a\n- 1 -", out: a}, {in: "a - 1 - b"}]
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n- 1 -\nb", "a\nb"),
        ("- 1 -\n- 2 -\nb", "b"),
        ("a\n- 1 -\n- 2 -", "a"),
        ("- 1 -", ""),
        ("a\n\n- 1 -\n\nb", "a\n\n\nb"),
        ("a - 1 - b\n-1-x", "a - 1 - b\n-1-x"),
    ],
)
def test_remove_lines_removes_lines_matched_in_full(
    write_pack: WritePack, text: str, expected: str
) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=REMOVE))
    result = ruleset.apply("notes", {"text": text})
    assert result.record["text"] == expected
    assert result.fired == (("demo.page",) if expected != text else ())
    padded = text + "\nfiller line" * 30  # long enough to run by lines: the same result
    assert ruleset.apply("notes", {"text": padded}).record["text"] == (
        expected + "\nfiller line" * 30 if expected else "filler line" + "\nfiller line" * 29
    )


def test_runs_that_cross_lines_stay_whole_for_a_form_that_reads_across_them(
    write_pack: WritePack,
) -> None:
    rules = r"""
    - id: demo.space_runs
      description: each run of white space through the whitespace form, which trims it away
      action: normalize
      form: whitespace
      pattern: '\s+'
      examples: [{in: "a  b", out: ab}]
    """
    ruleset = load_packs(["demo"], write_pack(rules=rules))
    assert body_plan(ruleset, "notes", "text").lines is None
    text = "first line \n\n\n second line" + "\nfiller" * 30
    cleaned = ruleset.apply("notes", {"text": text}).record["text"]
    assert cleaned == "firstlinesecondline" + "filler" * 30


EXTRACT = r"""
- id: demo.ticket
  description: the digits after a ticket label, empty when there are none
  action: extract
  into: ticket
  pattern: 'ticket=(\d*)'
  value: '\1'
  examples: [{in: "ticket=42", extracted: "42"}, {in: "no ticket"}]
- id: demo.upper
  description: a rule after it
  action: replace
  pattern: 'x'
  replacement: 'X'
  examples: [{in: x, out: X}]
"""


@pytest.mark.parametrize(("label", "value"), [("ticket=42", "42"), ("ticket=", "")])
def test_a_line_with_a_value_to_extract_runs_the_text_whole(
    write_pack: WritePack, label: str, value: str
) -> None:
    ruleset = load_packs(["demo"], write_pack(rules=EXTRACT))
    plan = body_plan(ruleset, "notes", "text")
    assert plan.lines is not None and plan.lines.count == 2
    text = "x filler line\n" * 20 + label
    assert plans._by_lines(plan, text, 1.0) is None
    result = ruleset.apply("notes", {"text": text})
    assert result.record == {"text": text.replace("x", "X"), "ticket": value}
    assert run_field(plan, text, 1.0) == run_field(whole(plan), text, 1.0)


def example_texts(ruleset: RuleSet) -> list[str]:
    return [
        text
        for pack in ruleset.packs
        for spec in pack.spec.rules
        for example in spec.examples
        for text in (example.text, example.expected_text)
    ]


def test_every_shipped_field_by_lines_gives_what_it_gives_whole() -> None:
    ruleset = load_packs(available_packs())
    pieces = [*example_texts(ruleset), *ODD_LINES, *CLAUSES]
    rng = random.Random(13)
    samples = ["\n".join(rng.choice(pieces) for _ in range(rng.randint(4, 16))) for _ in range(150)]
    entities = {selector.entity for pack in ruleset.packs for selector in pack.spec.applies_to}
    checked = by_lines = 0
    for entity in sorted(entities):
        for plan in ruleset._plan(entity):
            if plan.lines is None:
                continue
            reference = whole(plan)
            for text in samples:
                by_lines += plans._by_lines(plan, text, 1.0) is not None
                assert run_field(plan, text, 1.0) == run_field(reference, text, 1.0), (
                    entity,
                    plan.field,
                    text,
                )
            checked += 1
    assert checked >= 10  # contracts, medical orders, orders, invoices, customers
    assert by_lines > checked * len(samples) // 3  # the others hold a line that runs whole
