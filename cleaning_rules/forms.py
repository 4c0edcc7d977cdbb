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
``by_line`` (optional), for a form applied to the whole field, gives the form of one line: the
form of a text of several lines is then its lines' forms joined by ``\n`` (with
``blank_lines``, runs of blank lines kept once and blank lines at either end removed), which
lets the engine clean a long text line by line (``plan.py``); it returns None for a line it
cannot tell about, and the text is then cleaned whole. A form that reads facts off lines and
then rewrites the whole text with them (a contract's party declarations) gives ``line_facts``
and ``with_facts`` instead: its form of a text is ``with_facts(text, facts)``, the facts being
its lines' ``line_facts`` in line order.
"""

from __future__ import annotations

import calendar
import datetime as dt
import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import regex

from cleaning_rules.numerals import (
    DIGITS,
    NUMERAL_CHARS,
    counted_value,
    positional_value,
)
from cleaning_rules.parties import (
    DECLARATION_TRIGGER,
    PLACEHOLDER_CHARS,
    contract_parties,
    declarations,
    with_declared,
)
from cleaning_rules.prefilter import Trigger, no_char_of


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
    by_line: Callable[[str], str | None] | None = None
    blank_lines: bool = False
    line_facts: Callable[[str], tuple[object, ...]] | None = None
    with_facts: Callable[[str, Sequence[object]], str] | None = None


FORMS: dict[str, Form] = {}


def register_form(form: Form) -> Form:
    """Add ``form`` to the registry under its name (names must be unique)."""
    if form.name in FORMS:
        raise ValueError(f"normalize form {form.name!r} registered twice")
    FORMS[form.name] = form
    return form


# The compatibility characters that fill Chinese text: full-width punctuation, letters and digits
# (U+FF01..U+FF5E, typed with a Chinese input method), the other full-width and half-width forms
# of the same block, and the ideographic space.
_WIDE_FORMS = {
    char: decomposed
    for char in map(chr, [0x3000, *range(0xFF01, 0xFFEF)])
    if (decomposed := unicodedata.normalize("NFKD", char)) != char
}
# A class of literal characters in the standard library's re: one C scan, cannot backtrack.
_WIDE_FORM = re.compile("[" + "".join(map(re.escape, _WIDE_FORMS)) + "]")
_NARROW_FROM = 64  # characters; a shorter text is faster through CPython's NFKC at once


def _nfkc(text: str) -> str:
    # CPython runs its full NFKC algorithm over the whole text as soon as one character fails
    # the quick check: over 100 µs for a contract with full-width punctuation. Replacing each
    # full-width form by its compatibility decomposition first keeps the text's NFKD, hence
    # its NFKC, and usually leaves a text that passes the quick check (then returned as is);
    # any other compatibility character still goes through the full algorithm.
    if len(text) >= _NARROW_FROM:
        # A text uses a few of these characters many times (full-width commas, colons, brackets):
        # each one it holds is replaced in one pass, with no call per occurrence.
        for char in set(_WIDE_FORM.findall(text)):
            text = text.replace(char, _WIDE_FORMS[char])
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
        # A line break neither decomposes nor composes with its neighbours: NFKC of a text is
        # the NFKC of its lines, joined.
        by_line=_nfkc,
    )
)

# U+FF01..U+FF5E are the full-width twins of ASCII 0x21..0x7E; U+3000 is the ideographic space.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FULLWIDTH = regex.compile(r"[\uff01-\uff5e\u3000]")


def _halfwidth(text: str) -> str:
    return text.translate(_HALFWIDTH)


register_form(
    Form(
        "fullwidth_to_halfwidth",
        _halfwidth,
        "Full-width ASCII letters, digits, punctuation and the ideographic space to half-width",
        unchanged=lambda text: text.isascii() or _FULLWIDTH.search(text) is None,
        local=True,
        trigger=Trigger(frozenset(map(chr, _HALFWIDTH))),
        introduces=frozenset(map(chr, _HALFWIDTH.values())),
        by_line=_halfwidth,
    )
)

# Every C0/C1 control character except tab, newline and carriage return (whitespace, handled
# by the whitespace form).
_CONTROL = regex.compile(r"[^\P{Cc}\t\n\r]+")
# Unicode's Cc is fixed (C0, DEL and C1); a test checks it against the regex module's tables.
CONTROL_CHARS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) - frozenset("\t\n\r")


def _control_chars(text: str) -> str:
    return _CONTROL.sub("", text)


register_form(
    Form(
        "control_chars",
        _control_chars,
        "Remove control characters other than tab, newline and carriage return",
        # isprintable() is False for any control character; it is a C loop, much cheaper than
        # a regex scan on the clean majority of fields.
        unchanged=lambda text: text.isprintable() or _CONTROL.search(text) is None,
        local=True,
        trigger=Trigger(CONTROL_CHARS),
        introduces=frozenset(),
        by_line=_control_chars,
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


# White space to str.strip but not to \s (file, group, record and unit separators): the form
# strips them at the text's ends only, which one line cannot tell.
_STRIPPED_ONLY = no_char_of(
    WHITESPACE_CHARS - frozenset(regex.findall(r"\s", _UP_TO_IDEOGRAPHIC_SPACE))
)


def _whitespace_line(line: str) -> str | None:
    # One line of a longer text: its runs collapsed, a space at either edge removed (the
    # text's blank lines are the engine's, by ``blank_lines``). A carriage return would start
    # a new line, and a separator character is stripped only at the text's ends.
    if "\r" in line or not _STRIPPED_ONLY(line):
        return None
    return _HORIZONTAL_SPACE.sub(" ", line).strip(" ")


_NO_OTHER_WHITESPACE = no_char_of(WHITESPACE_CHARS - {" ", "\n"})


def _whitespace_unchanged(text: str) -> bool:
    if text.isprintable():
        # False for every white space character but the ASCII space: a one-line text.
        return "  " not in text and text == text.strip()
    # Several lines: no other white space, no space at a line's edge, at most one blank line.
    return (
        _NO_OTHER_WHITESPACE(text)
        and "  " not in text
        and " \n" not in text
        and "\n " not in text
        and "\n\n\n" not in text
        and text == text.strip()
    )


register_form(
    Form(
        "whitespace",
        _whitespace,
        "Collapse runs of spaces and tabs to one space, keep at most one blank line, trim",
        unchanged=_whitespace_unchanged,
        trigger=Trigger(WHITESPACE_CHARS),
        introduces=frozenset(" \n"),
        by_line=_whitespace_line,
        blank_lines=True,
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
    return _yuan(value)


def _yuan(value: Decimal) -> str:
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

_UPPERCASE_AMOUNT = regex.compile(
    r"(?:人民币|RMB)?\s*(?P<yuan>[^元圆]+)[元圆]"
    r"(?:(?P<jiao>[零壹贰叁肆伍陆柒捌玖])角)?零?(?:(?P<fen>[壹贰叁肆伍陆柒捌玖])分)?[整正]?"
)


def _cny_uppercase(text: str) -> str:
    found = _UPPERCASE_AMOUNT.fullmatch(text.strip())
    if found is None:
        return text
    yuan = counted_value(found.group("yuan").strip())
    if yuan is None:
        return text
    tenths = DIGITS[found.group("jiao")] if found.group("jiao") else 0
    hundredths = DIGITS[found.group("fen")] if found.group("fen") else 0
    return _yuan(Decimal(yuan) + Decimal(tenths) / 10 + Decimal(hundredths) / 100)


register_form(
    Form(
        "cny_uppercase",
        _cny_uppercase,
        "An amount in financial numerals (人民币壹万贰仟元整, 伍佰元零伍分) to digits with two "
        "decimals and 元, as cny_amount writes it",
        needs_pattern=True,
        introduces=frozenset("0123456789.元"),
    )
)

_DIGITS = regex.compile(r"\d+")
_ZH_DATE = regex.compile(r"([^\s年]+)\s*年\s*([^\s月]+)\s*月\s*([^\s日号]+)\s*[日号]")


def _ymd_date(text: str) -> str:
    if NUMERAL_CHARS.isdisjoint(text):
        parts: list[int | None] = [int(part) for part in _DIGITS.findall(text)]
    else:
        found = _ZH_DATE.search(text)
        if found is None:
            return text
        year, month, day = found.groups()
        parts = [
            int(year) if year.isdecimal() else positional_value(year),
            int(month) if month.isdecimal() else counted_value(month),
            int(day) if day.isdecimal() else counted_value(day),
        ]
    if len(parts) != 3 or None in parts:
        return text
    try:
        date = dt.date(*parts)  # type: ignore[arg-type]
    except ValueError:
        # Not a real date (2024年2月30日): leave it for a person rather than guess.
        return text
    return date.isoformat()


register_form(
    Form(
        "ymd_date",
        _ymd_date,
        "A date written year, month, day (2024年3月5日, 2024/3/5, 二〇二四年三月五日) to ISO 8601 "
        "(2024-03-05)",
        needs_pattern=True,
        introduces=frozenset("0123456789-"),
    )
)

_NUMERAL_RUN = regex.compile("[" + "".join(sorted(NUMERAL_CHARS)) + "]+")


def _zh_numerals(text: str) -> str:
    def arabic(run: regex.Match[str]) -> str:
        value = counted_value(run.group())
        return run.group() if value is None else str(value)

    return _NUMERAL_RUN.sub(arabic, text)


register_form(
    Form(
        "zh_numerals",
        _zh_numerals,
        "Counted Chinese numerals to Arabic digits (第一百零三条 → 第103条, 第十二条第三款 → "
        "第12条第3款); a run that is not a well-formed number (十十) stays",
        needs_pattern=True,
        trigger=Trigger(NUMERAL_CHARS),
        introduces=frozenset("0123456789"),
    )
)

register_form(
    Form(
        "no_spaces",
        lambda text: text.replace(" ", "").replace("\t", ""),
        "Remove the spaces and tabs of each match (text spaced out letter by letter)",
        needs_pattern=True,
        trigger=Trigger(frozenset(" \t")),
        introduces=frozenset(),
    )
)


def _html_entity(text: str) -> str:
    # A code point that is not a character (&#0;, &#xD800;) would become U+FFFD: keep the text.
    decoded = html.unescape(text)
    return text if "\ufffd" in decoded else decoded


register_form(
    Form(
        "html_entities",
        _html_entity,
        "HTML character references (&amp;, &nbsp;, &#20013;, &#x4e2d;) to the characters they "
        "name; unknown names stay",
        needs_pattern=True,
        trigger=Trigger(frozenset("&")),
        introduces=None,
    )
)

_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr) if name}
_CLF_TIME = regex.compile(
    r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})\s?([+-]\d{2}):?(\d{2})"
)
_ISO_TIME = regex.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,6}))?"
    r"\s?(?:Z|([+-]\d{2}):?(\d{2}))"
)


def _utc_timestamp(text: str) -> str:
    fraction = ""
    clf = _CLF_TIME.fullmatch(text)
    iso = None if clf is not None else _ISO_TIME.fullmatch(text)
    try:
        if clf is not None:
            day, month_name, year, hour, minute, second, tz_hours, tz_minutes = clf.groups()
            month = _MONTHS.get(month_name.title())
            if month is None:
                return text
            moment = dt.datetime(int(year), month, int(day), int(hour), int(minute), int(second))
        elif iso is not None:
            year, month_text, day, hour, minute, second, digits, tz_hours, tz_minutes = iso.groups()
            moment = dt.datetime(
                int(year), int(month_text), int(day), int(hour), int(minute), int(second)
            )
            fraction = f".{digits}" if digits else ""
        else:
            return text
    except ValueError:
        return text  # not a real time (month 13, 25 o'clock): left for a person
    if tz_hours is not None:
        sign = -1 if tz_hours.startswith("-") else 1
        offset = dt.timedelta(hours=abs(int(tz_hours)), minutes=int(tz_minutes))
        moment -= sign * offset
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


register_form(
    Form(
        "utc_timestamp",
        _utc_timestamp,
        "A timestamp with its UTC offset (05/Mar/2024:10:00:00 +0800, 2024-03-05 10:00:00+08:00) "
        "to ISO 8601 in UTC (2024-03-05T02:00:00Z); fractions of a second are kept",
        needs_pattern=True,
        introduces=frozenset("0123456789-:TZ."),
    )
)

_JAVA_FRAME = regex.compile(r"\n[ \t]+at ")
_PYTHON_FRAME = regex.compile(r"\n(?=[ \t]+File )")


def _stack_frames(text: str) -> str:
    if text.startswith("\n") and _JAVA_FRAME.match(text):
        # Java prints the frame that threw first: keep it, count the callers below it.
        frames = text.split("\n")[1:]
        indent = frames[0][: len(frames[0]) - len(frames[0].lstrip())]
        return f"\n{frames[0]}\n{indent}... {len(frames) - 1} more"
    frames = _PYTHON_FRAME.split(text)[1:]
    if len(frames) < 2:
        return text
    # Python prints the frame that raised last: keep it, count the callers above it.
    indent = frames[-1][: len(frames[-1]) - len(frames[-1].lstrip())]
    earlier = len(frames) - 1
    plural = "s" if earlier > 1 else ""
    return f"\n{indent}... {earlier} earlier frame{plural}\n{frames[-1]}"


register_form(
    Form(
        "stack_frames",
        _stack_frames,
        "A run of stack frames folded to the one that raised (the first Java frame, the last "
        "Python frame) and a count of the others",
        needs_pattern=True,
        introduces=frozenset("0123456789. more earlier frames"),
    )
)


register_form(
    Form(
        "contract_parties",
        contract_parties,
        "The parties a contract declares (甲方: 某某公司, 某某公司(以下简称“乙方”), Party A: Acme "
        'Ltd, Acme Ltd. (the "Licensee")) replaced everywhere in the text by placeholders '
        "(<PARTY_A>, <PARTY_B>, <LICENSEE>)",
        trigger=DECLARATION_TRIGGER,
        introduces=PLACEHOLDER_CHARS,
        line_facts=declarations,
        with_facts=with_declared,  # type: ignore[arg-type]
    )
)
