"""Generalizations keep the column type and fail closed on what they cannot parse."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from privacy.generalize import to_band, to_city, to_year


def test_year() -> None:
    assert to_year(date(1990, 5, 12), 0) == date(1990, 1, 1)
    assert to_year(datetime(1990, 5, 12, 8), 0) == datetime(1990, 1, 1)
    assert to_year("1990-05-12", 0) == "1990"
    assert to_year("1990年5月12日", 0) == "1990"
    assert to_year("12/05/1990", 0) is None


def test_band() -> None:
    assert to_band(37, 10) == 30
    assert to_band(37.5, 5) == 35.0
    assert to_band("37", 10) == "30-39"
    assert to_band("unknown", 10) is None


@pytest.mark.parametrize(
    ("address", "city"),
    [
        ("广东省深圳市南山区科技园路1号", "广东省深圳市"),
        ("北京市朝阳区建国路88号", "北京市"),
        ("新疆维吾尔自治区乌鲁木齐市天山区", "新疆维吾尔自治区乌鲁木齐市"),
        ("1777 Kramer Court\nJohnsonfurt, NE 80119", "Johnsonfurt, NE"),
        ("12 Main St, Springfield, IL 62704", "Springfield, IL"),
        ("somewhere", None),
        (42, None),
    ],
)
def test_city(address: object, city: str | None) -> None:
    assert to_city(address, 0) == city
