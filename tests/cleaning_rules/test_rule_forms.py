"""Normalisation forms: the code behind `normalize` rules."""

from __future__ import annotations

import unicodedata

import pytest
import regex

from cleaning_rules.forms import FORMS, WHITESPACE_CHARS
from cleaning_rules.numerals import counted_value, positional_value

# Full-width forms on purpose.
# ruff: noqa: RUF001


@pytest.mark.parametrize(
    ("form", "text", "expected"),
    [
        ("cny_amount", "¥1,234.5", "1234.50元"),
        ("cny_amount", "3万元", "30000.00元"),
        ("cny_amount", "1.23456万元", "12345.60元"),
        ("cny_amount", "RMB 0.125", "0.125元"),
        ("cny_amount", "no number", "no number"),
        ("cny_uppercase", "人民币壹万贰仟元整", "12000.00元"),
        ("cny_uppercase", "伍佰元零伍分", "500.05元"),
        ("cny_uppercase", "壹拾贰万叁仟肆佰伍拾陆元柒角捌分", "123456.78元"),
        ("cny_uppercase", "拾拾元", "拾拾元"),  # not a number: left for a person
        ("ymd_date", "2024年3月5日", "2024-03-05"),
        ("ymd_date", "2024/2/29", "2024-02-29"),
        ("ymd_date", "2023/2/29", "2023/2/29"),  # not a date: left for a person
        ("ymd_date", "二〇二四年三月五日", "2024-03-05"),
        ("ymd_date", "二零二三年十二月三十一日", "2023-12-31"),
        ("ymd_date", "二〇二三年二月三十日", "二〇二三年二月三十日"),
        ("zh_numerals", "第一百零三条", "第103条"),
        ("zh_numerals", "第十二条第三款", "第12条第3款"),
        ("zh_numerals", "第十十条", "第十十条"),
        ("no_spaces", "本 合 同", "本合同"),
        ("html_entities", "&amp;", "&"),
        ("html_entities", "&#x4e2d;", "中"),
        ("html_entities", "&#0;", "&#0;"),  # would decode to U+FFFD
        ("utc_timestamp", "05/Mar/2024:10:00:00 +0800", "2024-03-05T02:00:00Z"),
        ("utc_timestamp", "2024-03-05 10:00:00.123+08:00", "2024-03-05T02:00:00.123Z"),
        ("utc_timestamp", "2024-01-01T01:00:00-05:30", "2024-01-01T06:30:00Z"),
        ("utc_timestamp", "2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z"),
        ("utc_timestamp", "31/Foo/2024:10:00:00 +0800", "31/Foo/2024:10:00:00 +0800"),
        (
            "stack_frames",
            "\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\n\tat a.B.e(B.java:3)",
            "\n\tat a.B.c(B.java:1)\n\t... 2 more",
        ),
        (
            "stack_frames",
            '\n  File "a.py", line 1, in <module>\n    main()\n  File "b.py", line 5, in run\n'
            "    raise X",
            '\n  ... 1 earlier frame\n  File "b.py", line 5, in run\n    raise X',
        ),
        ("whitespace", "a \t b\r\n\r\n\r\nc ", "a b\n\nc"),
        ("control_chars", "a\x00b\tc\x1b", "ab\tc"),
        ("fullwidth_to_halfwidth", "ＡＢＣ　１２３！", "ABC 123!"),
        ("nfkc", "㎎ｍｌ", "mgml"),
    ],
)
def test_form(form: str, text: str, expected: str) -> None:
    assert FORMS[form].apply(text) == expected


def test_nfkc_equals_unicodedata_on_long_text_with_every_compatibility_neighbour() -> None:
    # Long texts take the narrowing path: each full-width form, half-width katakana and
    # jamo next to what may compose or reorder with it (combining marks, voiced sound marks,
    # conjoining jamo, a stray compatibility character outside the block).
    padding = "阿莫西林胶囊的剂量为每日两次" * 5
    neighbours = ["", "\u0301", "\u0316\u0301", "\uff9e", "\u3099", "\u1161", "\u11a8", "㎎", "é"]
    texts = [
        padding + chr(code) + after + padding
        for code in [0x3000, *range(0xFF01, 0xFFEF)]
        for after in neighbours
    ]
    texts += [padding + "ｶﾞｷﾟ" + padding, padding + "ﾡﾡ\uffc2" + padding, "ａ" * 200]
    nfkc = FORMS["nfkc"].apply
    for text in texts:
        assert nfkc(text) == unicodedata.normalize("NFKC", text), ascii(text[60:75])


SAMPLES = [
    "plain", "阿莫西林 0.5g", "a  b", " lead", "tab\there", "ｂｉｄ", "x\x07", "10²", "",
    "第十二条", "人民币壹万元整", "二〇二四年三月五日", "&amp;", "本 合 同 自 双",
    "05/Mar/2024:10:00:00 +0800", "甲方：某某公司\n某某公司应付款", "北京\u00a0朝阳区",
    '\n\tat a.B(B.java:1)\n\tat a.C(C.java:2)', "＿＿＿", "ｱｲｳ",
]  # fmt: skip


@pytest.mark.parametrize("form", sorted(FORMS))
def test_unchanged_shortcut_is_never_wrong(form: str) -> None:
    shortcut = FORMS[form].unchanged
    for text in SAMPLES:
        if shortcut is not None and shortcut(text):
            assert FORMS[form].apply(text) == text


@pytest.mark.parametrize("form", sorted(FORMS))
def test_trigger_and_introduced_characters_hold(form: str) -> None:
    # Without a trigger character the form changes nothing; what it writes is its input's
    # characters and those it says it introduces (the engine wakes later rules by them).
    spec = FORMS[form]
    for text in SAMPLES:
        out = spec.apply(text)
        if spec.trigger is not None and spec.trigger.absent(text):
            assert out == text, text
        if spec.introduces is not None:
            assert set(out) <= set(text) | spec.introduces, text


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("十二", 12), ("一百零三", 103), ("两千", 2000), ("三千零五", 3005), ("一百一十", 110),
        ("三万零五", 30005), ("壹拾贰万", 120000), ("一亿二千万", 120_000_000), ("零", 0),
        ("十十", None), ("百二", None), ("二三", None), ("一百十", None), ("万", None), ("", None),
    ],
)  # fmt: skip
def test_counted_numerals(text: str, value: int | None) -> None:
    assert counted_value(text) == value


def test_positional_numerals() -> None:
    assert positional_value("二〇二四") == 2024
    assert positional_value("一九九八") == 1998
    assert positional_value("二〇二四年") is None


def test_whitespace_characters_are_all_listed() -> None:
    # The form's trigger and shortcut rely on WHITESPACE_CHARS holding every character that
    # regex's \s or str.isspace accept, over the whole of Unicode.
    everything = "".join(map(chr, range(0x110000)))
    found = set(regex.findall(r"\s", everything)) | {c for c in everything if c.isspace()}
    assert found == WHITESPACE_CHARS


@pytest.mark.parametrize(
    "text",
    ["第一段\n\n第二段", "a\nb", "a \nb", "a\n b", "a\n\n\nb", "a\r\nb", "a\u3000b\nc", "a\n"],
)
def test_whitespace_shortcut_on_several_lines(text: str) -> None:
    form = FORMS["whitespace"]
    assert form.unchanged is not None
    assert form.unchanged(text) == (form.apply(text) == text)
