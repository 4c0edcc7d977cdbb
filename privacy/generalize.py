"""Generalizations: coarsen a value so it no longer singles a person out.

A registry keyed by the names policy YAML uses (``generalize: {to: year}``). Each keeps the
column's type, because the chain's output schema is its input schema: a date becomes the
first day of its year, an integer age the lower bound of its band, a string its coarse
string form. A value a generalizer cannot parse becomes null: failing closed is safer than
passing an unparsed address through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

Generalizer = Callable[[Any, int], Any]

GENERALIZERS: dict[str, Generalizer] = {}


def generalizer(name: str) -> Callable[[Generalizer], Generalizer]:
    def register(fn: Generalizer) -> Generalizer:
        GENERALIZERS[name] = fn
        return fn

    return register


_YEAR = re.compile(r"^\s*(\d{4})(?:[-/.年]|$)")


@generalizer("year")
def to_year(value: Any, _width: int) -> Any:
    """Birth date → year (dates keep their type as 1 January of the year)."""
    if isinstance(value, datetime):
        return datetime(value.year, 1, 1, tzinfo=value.tzinfo)
    if isinstance(value, date):
        return date(value.year, 1, 1)
    if isinstance(value, str):
        match = _YEAR.match(value)
        return match.group(1) if match else None
    if isinstance(value, int):
        return value
    return None


@generalizer("band")
def to_band(value: Any, width: int) -> Any:
    """Age → band: ints become the band's lower bound, strings ``"30-39"``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return type(value)(int(value) // width * width)
    if isinstance(value, str) and value.strip().isdigit():
        low = int(value) // width * width
        return f"{low}-{low + width - 1}"
    return None


# Chinese addresses run from province to street without separators: an optional province
# (or autonomous region), then the prefecture-level unit. Municipalities are their own city.
_ZH_MUNICIPALITY = re.compile(r"^\s*(北京市|上海市|天津市|重庆市)")
_ZH_CITY = re.compile(
    r"^\s*(?P<province>[^\s省]{2,8}?省|[^\s]{2,10}?自治区)?"
    r"(?P<city>[^\s市州县盟区]{1,10}?(?:市|自治州|地区|盟|县))"
)
# US-style: "…\nCity, ST 12345" or "…, City, ST 12345".
_EN_CITY = re.compile(
    r"(?:^|[\n,])\s*(?P<city>[A-Za-z][A-Za-z .'-]*?),\s*(?P<state>[A-Z]{2})\s+\d{5}"
)


@generalizer("city")
def to_city(value: Any, _width: int) -> Any:
    """Address → city, qualified by its province or state (city names repeat)."""
    if not isinstance(value, str):
        return None
    if match := _ZH_MUNICIPALITY.match(value):
        return match.group(1)
    if match := _ZH_CITY.match(value):
        return (match.group("province") or "") + match.group("city")
    if match := _EN_CITY.search(value):
        return f"{match.group('city').strip()}, {match.group('state')}"
    return None
