"""Normalisation forms: the code behind `normalize` rules."""

from __future__ import annotations

import pytest

from cleaning_rules.forms import FORMS


@pytest.mark.parametrize(
    ("form", "text", "expected"),
    [
        ("cny_amount", "¥1,234.5", "1234.50元"),
        ("cny_amount", "3万元", "30000.00元"),
        ("cny_amount", "1.23456万元", "12345.60元"),
        ("cny_amount", "RMB 0.125", "0.125元"),
        ("cny_amount", "no number", "no number"),
        ("ymd_date", "2024年3月5日", "2024-03-05"),
        ("ymd_date", "2024/2/29", "2024-02-29"),
        ("ymd_date", "2023/2/29", "2023/2/29"),  # not a date: left for a person
        ("whitespace", "a \t b\r\n\r\n\r\nc ", "a b\n\nc"),
        ("control_chars", "a\x00b\tc\x1b", "ab\tc"),
        ("fullwidth_to_halfwidth", "ＡＢＣ　１２３！", "ABC 123!"),  # noqa: RUF001
        ("nfkc", "㎎ｍｌ", "mgml"),  # noqa: RUF001
    ],
)
def test_form(form: str, text: str, expected: str) -> None:
    assert FORMS[form].apply(text) == expected


SAMPLES = ["plain", "阿莫西林 0.5g", "a  b", " lead", "tab\there", "ｂｉｄ", "x\x07", "10²", ""]  # noqa: RUF001


@pytest.mark.parametrize("form", sorted(FORMS))
def test_unchanged_shortcut_is_never_wrong(form: str) -> None:
    shortcut = FORMS[form].unchanged
    for text in SAMPLES:
        if shortcut is not None and shortcut(text):
            assert FORMS[form].apply(text) == text
