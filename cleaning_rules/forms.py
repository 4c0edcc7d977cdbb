"""Normalisation forms: the named text transforms that a ``normalize`` rule picks with ``form``.

Some clean-ups are not a regex substitution (Unicode normalisation) or need arithmetic a
replacement template cannot do (``3万元`` is 30000 yuan, ``3月5日`` needs zero padding). They
live here as code, and YAML names them, the way a checksum is named rather than spelled out.

A form maps text to text. When a rule has a ``pattern`` the form is applied to each match, else
to the whole field. ``unchanged`` is a cheap test that is True only when the form would return
the text as it is; ``local`` says that a text the form leaves unchanged has no part it would
change either, which lets a patterned rule use the same shortcut. ``trigger`` names characters
at least one of which a text must hold for the form to change it (``control_chars`` has nothing
to do in a text without a control character): the engine merges the triggers of a field's
rules to find, in one pass over the text, the few rules that can apply. ``introduces`` lists
the characters the form may write that were not in its input (None: any), so that after a
change the engine knows which rules the new text can have woken up without reading it again.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import regex

from cleaning_rules.prefilter import Trigger


@dataclass(frozen=True, slots=True)
class Form:
    """A named, pure text transform (see the module docstring for the contract)."""

    name: str
    apply: Callable[[str], str]
    description: str
    unchanged: Callable[[str], bool] | None = None
    local: bool = False
    needs_pattern: bool = False
    trigger: Trigger | None = None
    introduces: frozenset[str] | None = None


FORMS: dict[str, Form] = {}


def register_form(form: Form) -> Form:
    """Add ``form`` to the registry under its name (names must be unique)."""
    if form.name in FORMS:
        raise ValueError(f"normalize form {form.name!r} registered twice")
    FORMS[form.name] = form
    return form


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _nfkc_unchanged(text: str) -> bool:
    # A substring of an NFKC-normal string is NFKC-normal too (decomposition is per character
    # and composition only looks back inside the text), hence ``local=True``.
    return unicodedata.is_normalized("NFKC", text)


register_form(
    Form(
        "nfkc",
        _nfkc,
        "Unicode NFKC: full-width to half-width, compatibility characters to their plain form",
        unchanged=_nfkc_unchanged,
        local=True,
        # Every ASCII character is its own NFKC form.
        trigger=Trigger(nonascii=True),
        introduces=None,  # a compatibility character decomposes into others
    )
)

# U+FF01..U+FF5E are the full-width twins of ASCII 0x21..0x7E; U+3000 is the ideographic space.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FULLWIDTH = regex.compile(r"[\uff01-\uff5e\u3000]")

register_form(
    Form(
        "fullwidth_to_halfwidth",
        lambda text: text.translate(_HALFWIDTH),
        "Full-width ASCII letters, digits, punctuation and the ideographic space to half-width",
        unchanged=lambda text: text.isascii() or _FULLWIDTH.search(text) is None,
        local=True,
        trigger=Trigger(frozenset(map(chr, _HALFWIDTH))),
        introduces=frozenset(map(chr, _HALFWIDTH.values())),
    )
)

# Every C0/C1 control character except tab, newline and carriage return (whitespace, handled
# by the whitespace form).
_CONTROL = regex.compile(r"[^\P{Cc}\t\n\r]+")
# Unicode's Cc is fixed (C0, DEL and C1); a test checks it against the regex module's tables.
CONTROL_CHARS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) - frozenset("\t\n\r")

register_form(
    Form(
        "control_chars",
        lambda text: _CONTROL.sub("", text),
        "Remove control characters other than tab, newline and carriage return",
        # isprintable() is False for any control character; it is a C loop, much cheaper than
        # a regex scan on the clean majority of fields.
        unchanged=lambda text: text.isprintable() or _CONTROL.search(text) is None,
        local=True,
        trigger=Trigger(CONTROL_CHARS),
        introduces=frozenset(),
    )
)

_LINE_BREAK = regex.compile(r"\r\n?")
_HORIZONTAL_SPACE = regex.compile(r"[^\S\n]+")
_SPACE_AT_LINE_END = regex.compile(r" ?\n ?")
_BLANK_LINES = regex.compile(r"\n{3,}")
# What the form's regexes (\s) and str.strip treat as white space; U+3000 is the last such
# code point (a test checks the whole range).
_UP_TO_IDEOGRAPHIC_SPACE = "".join(map(chr, range(0x3001)))
WHITESPACE_CHARS = frozenset(regex.findall(r"\s", _UP_TO_IDEOGRAPHIC_SPACE)) | frozenset(
    char for char in _UP_TO_IDEOGRAPHIC_SPACE if char.isspace()
)


def _whitespace(text: str) -> str:
    # Newlines carry structure (paragraphs, list items) that LLM data should keep, so only
    # horizontal runs collapse to one space; more than one blank line collapses to one.
    text = _LINE_BREAK.sub("\n", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = _SPACE_AT_LINE_END.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _whitespace_unchanged(text: str) -> bool:
    # isprintable() is False for every whitespace character except the ASCII space.
    return text.isprintable() and "  " not in text and text == text.strip()


register_form(
    Form(
        "whitespace",
        _whitespace,
        "Collapse runs of spaces and tabs to one space, keep at most one blank line, trim",
        unchanged=_whitespace_unchanged,
        trigger=Trigger(WHITESPACE_CHARS),
        introduces=frozenset(" \n"),
    )
)

_NUMBER = regex.compile(r"\d[\d,]*(?:\.\d+)?")
_MULTIPLIERS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}
_CENT = Decimal("0.01")


def _cny_amount(text: str) -> str:
    number = _NUMBER.search(text)
    if number is None:
        return text
    try:
        value = Decimal(number.group().replace(",", ""))
    except InvalidOperation:
        return text
    for unit, factor in _MULTIPLIERS.items():
        if unit in text[number.end() :]:
            value *= factor
    # Two decimals is the canonical form; an amount given more precisely keeps its precision.
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        value = value.quantize(_CENT)
    return f"{value:f}元"


register_form(
    Form(
        "cny_amount",
        _cny_amount,
        "A yuan amount (¥1,234.5, RMB 1234, 3万元) to plain digits with two decimals and 元",
        needs_pattern=True,
        introduces=frozenset("0123456789.-元"),
    )
)

_DIGITS = regex.compile(r"\d+")


def _ymd_date(text: str) -> str:
    parts = _DIGITS.findall(text)
    if len(parts) != 3:
        return text
    try:
        date = dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        # Not a real date (2024年2月30日): leave it for a person rather than guess.
        return text
    return date.isoformat()


register_form(
    Form(
        "ymd_date",
        _ymd_date,
        "A date written year, month, day (2024年3月5日, 2024/3/5) to ISO 8601 (2024-03-05)",
        needs_pattern=True,
        introduces=frozenset("0123456789-"),
    )
)
