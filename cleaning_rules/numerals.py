"""Chinese numerals read as numbers: 一百零三 is 103, 壹万贰仟 is 12000, 二〇二四 is 2024.

Two notations share the digits. Counted numbers put a unit after each digit (三千零五: three
thousand, zero, five) and group by 万 and 亿; written years and codes list digits one by one
(二〇二四). Financial documents use the anti-fraud forms of the same characters (壹, 贰, 拾,
佰…). Anything that is not a well-formed number in one of these notations gives None, so a
form that uses these functions leaves odd text (十十, 百二) for a person instead of guessing.
"""

from __future__ import annotations

DIGITS: dict[str, int] = {
    **dict.fromkeys("零〇", 0),
    **dict.fromkeys("一壹", 1),
    **dict.fromkeys("二贰貳两兩", 2),
    **dict.fromkeys("三叁參", 3),
    **dict.fromkeys("四肆", 4),
    **dict.fromkeys("五伍", 5),
    **dict.fromkeys("六陆陸", 6),
    **dict.fromkeys("七柒", 7),
    **dict.fromkeys("八捌", 8),
    **dict.fromkeys("九玖", 9),
}
SMALL_UNITS: dict[str, int] = {
    **dict.fromkeys("十拾", 10),
    **dict.fromkeys("百佰", 100),
    **dict.fromkeys("千仟", 1000),
}
LARGE_UNITS: dict[str, int] = {
    **dict.fromkeys("万萬", 10_000),
    **dict.fromkeys("亿億", 100_000_000),
}
NUMERAL_CHARS = frozenset(DIGITS) | frozenset(SMALL_UNITS) | frozenset(LARGE_UNITS)


def counted_value(text: str) -> int | None:
    """The value of a counted Chinese number (十二, 一百零三, 两千, 三万零五, 壹拾贰万), or None.

    A bare leading 十 means ten (十二 is 12); 零 marks a skipped unit and may stand anywhere a
    digit may. Units must fall from left to right within a group, and each group (below 万,
    below 亿) is read on its own.
    """
    if not text:
        return None
    for unit in ("亿", "億", "万", "萬"):
        if unit in text:
            high, _, low = text.partition(unit)
            high_value = counted_value(high)
            low_value = counted_value(low) if low else 0
            if high_value is None or low_value is None or low_value >= LARGE_UNITS[unit]:
                return None
            return high_value * LARGE_UNITS[unit] + low_value
    return _group_value(text)


def _group_value(text: str) -> int | None:
    """The value (below 10,000) of a group with only digits and 十/百/千 units."""
    total = 0
    digit: int | None = None
    last_unit = 10_000
    for index, char in enumerate(text):
        if char in DIGITS:
            if digit not in (None, 0):
                return None  # two digits without a unit between them: 二三
            digit = DIGITS[char]
        elif char in SMALL_UNITS:
            unit = SMALL_UNITS[char]
            if unit >= last_unit:
                return None  # units must fall: 十百
            if digit is None:
                if unit != 10 or index != 0:
                    return None  # only 十 may stand without a digit, and only first
                digit = 1
            if digit == 0:
                return None  # 零十
            total += digit * unit
            digit, last_unit = None, unit
        else:
            return None
    return total + (digit or 0)


def positional_value(text: str) -> int | None:
    """The value of digits written one by one (二〇二四 is 2024), or None."""
    if not text or any(char not in DIGITS for char in text):
        return None
    return int("".join(str(DIGITS[char]) for char in text))
