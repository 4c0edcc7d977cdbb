"""A rule's pattern compiled with the standard library's ``re`` too, where that is provably safe.

A call to the ``regex`` module costs a few microseconds before it reads a character (argument
parsing, and under a time limit a read of the process clock); ``re`` costs a fraction of a
microsecond. On a short field that difference is most of the rule's time. So a pattern gets a
standard-library twin, used on values of at most :data:`TWIN_LENGTH` characters that hold no
character beyond the Basic Multilingual Plane (:func:`twin_reads`), when all of the following
hold; otherwise the rule runs on ``regex`` only, as before:

* **It cannot backtrack catastrophically.** The lint check (``backtracking.py``) finds none of
  the shapes that make a regex exponential (nested unbounded quantifiers, overlapping
  alternatives under a quantifier). ``re`` has no time limit, so this is what keeps the
  issue's promise that a bad rule cannot hang a run: a flagged pattern keeps ``regex`` and its
  timeout, and a twin only ever reads a short value, so even a polynomial pattern the check
  lets through does a bounded amount of work per call.
* **It means the same in both modules.** The pattern is read token by token and only syntax
  both modules define alike is accepted: literals, groups (capturing, named ``(?P<…>)``,
  non-capturing, atomic), lookarounds, alternation, counted and possessive quantifiers,
  ``^ $ \\A \\Z``, one-digit back-references (not under IGNORECASE). Unicode properties
  (``\\p{Han}``), nested sets, scoped flags, fuzzy matching and every other ``regex``-only
  construct leave the rule on ``regex``. The two modules carry their own Unicode tables, of
  different versions (``\\d``, ``\\s`` and ``\\w`` differ on hundreds of code points), so every
  atom whose meaning rests on them (``\\d``, ``\\s``, ``\\w``, a class, ``.``, any character
  under IGNORECASE, and ``\\w`` for ``\\b`` and ``\\B``) is run by both modules over every code
  point a twin can meet, U+0000 to U+FFFF: where the two sets differ, the atom is written for
  ``re`` as the exact set ``regex`` gives it (``\\b`` and ``\\B`` as lookarounds on that ``\\w``).
  Beyond the BMP the sets were not compared (``re`` tests a class's astral ranges one by one,
  several times slower), hence no twin for a text with such a character.
* **It compiles in ``re`` with the same flags** (IGNORECASE, MULTILINE, DOTALL, ASCII; not
  VERBOSE), e.g. a variable-width lookbehind does not.

The actions check a twin on their rule's examples before using it (``actions.py``), and a test
runs every shipped twin against ``regex`` on generated records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache

import regex

from cleaning_rules.backtracking import backtracking_risks

# Values up to this length use the twin: short enough that any pattern the static check lets
# through does bounded work on one, and where a call's fixed cost dominates. Measured on the
# bench's fields, the twins took half regex's time below 128 characters and a quarter more
# from 128 to 256, where regex's search for a pattern's required text (年 in a date, 元 in an
# amount) beats re trying a lookbehind at every position of a contract.
TWIN_LENGTH = 128

_FLAGS = {
    regex.IGNORECASE: re.IGNORECASE,
    regex.MULTILINE: re.MULTILINE,
    regex.DOTALL: re.DOTALL,
    regex.ASCII: re.ASCII,
}
# Flags regex sets on every str pattern (Unicode, version 0): they mean re's defaults.
_IMPLIED = regex.UNICODE | regex.VERSION0
_CLASS_ESCAPES = frozenset("dDsSwW")
_WORD_EDGES = frozenset("bB")
# Escapes both modules read alike: characters, the classes above (enumerated), positions.
_KNOWN_ESCAPES = frozenset("tnrfva") | _CLASS_ESCAPES | _WORD_EDGES | frozenset("AZ")
_GROUP_OPENINGS = ("(?:", "(?>", "(?=", "(?!", "(?<=", "(?<!")
_GROUP_NAME = re.compile(r"\(\?P<([A-Za-z_]\w*)>")
_COUNTED = re.compile(r"\{(?:\d+(?:,\d*)?|,\d+)\}")
_HEX = {"x": 2, "u": 4, "U": 8}
# Every code point a twin reads: the Basic Multilingual Plane, surrogates included.
_BMP = "".join(map(chr, range(0x10000)))
# A class that names code points only (characters, ranges, character escapes): no \\d, \\s, \\w.
_CODE_POINT_CLASS = re.compile(
    r"\[\^?\]?(?:[^\\\]\[]|\\[^A-Za-z0-9]|\\[tnrfva]|\\x[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4})*\]"
)
_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]")


def twin_reads(text: str) -> bool:
    """Whether a twin may run on ``text``: short, and within the BMP it was checked on."""
    return len(text) <= TWIN_LENGTH and (text.isascii() or _ASTRAL.search(text) is None)


class _NotTwin(Exception):
    """The pattern uses syntax whose meaning in ``re`` is not proven the same."""


def stdlib_twin(pattern: regex.Pattern[str]) -> re.Pattern[str] | None:
    """``pattern`` compiled with ``re``, or None unless it provably matches exactly as ``regex``
    does and cannot backtrack catastrophically (see the module docstring)."""
    flags = pattern.flags & ~_IMPLIED
    if flags & ~sum(_FLAGS) or backtracking_risks(pattern.pattern):
        return None
    try:
        twin = re.compile(_translate(pattern.pattern, flags), _re_flags(flags))
    except (_NotTwin, re.error):
        return None
    if twin.groups != pattern.groups or twin.groupindex != dict(pattern.groupindex):
        return None
    return twin


def _re_flags(flags: int) -> int:
    """``re``'s bits for ``regex`` flags (those in ``_FLAGS``)."""
    return sum(bit for flag, bit in _FLAGS.items() if flags & flag)


def _translate(source: str, flags: int) -> str:
    """``source`` for ``re``: the common syntax copied, every atom whose meaning rests on a
    module's Unicode tables replaced by the exact set ``regex`` gives it; raises
    :class:`_NotTwin` on syntax outside the common subset."""
    ignore_case = bool(flags & regex.IGNORECASE)
    out: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\":
            end = _escape_end(source, i, ignore_case=ignore_case)
            escape = source[i:end]
            if escape[1] in _WORD_EDGES:
                out.append(_word_edge(escape[1], flags))
            elif escape[1] in _CLASS_ESCAPES or (ignore_case and escape[1] not in "AZ123456789"):
                out.append(_atom(escape, flags))
            else:
                out.append(escape)
            i = end
        elif char == "[":
            end = _class_end(source, i)
            out.append(_atom(source[i:end], flags))
            i = end
        elif char == "(":
            end = _group_opening_end(source, i)
            out.append(source[i:end])
            i = end
        elif char == "{":
            counted = _COUNTED.match(source, i)
            if counted is None:
                raise _NotTwin  # a literal brace, or regex's fuzzy matching
            out.append(counted.group())
            i = counted.end()
        elif char == ".":
            out.append(_atom(char, flags))
            i += 1
        elif char in ")|^$*+?":
            out.append(char)
            i += 1
        else:
            out.append(_atom(re.escape(char), flags) if ignore_case else re.escape(char))
            i += 1
    return "".join(out)


@cache
def _atom(atom: str, flags: int) -> str:
    """The one-character ``atom`` for ``re``: as written when both modules match the same code
    points of the BMP with it (``re`` keeps its fast paths for literals and small classes),
    else the exact set ``regex`` matches, as a case-sensitive class (the set already holds
    every case the atom matches)."""
    if not flags & regex.IGNORECASE and _CODE_POINT_CLASS.fullmatch(atom):
        return atom  # a class of code points and ranges: the same by definition, no tables
    ours = _runs(regex.finditer(f"(?:{atom})+", _BMP, flags))
    try:
        if _runs(re.finditer(f"(?:{atom})+", _BMP, _re_flags(flags))) == ours:
            return atom
    except re.error:
        pass  # a class re cannot read (\p{Han} inside): regex's set is written out instead
    if not ours:
        return "(?!)"
    body = "".join(
        f"\\u{start:04x}" if end - start == 1 else f"\\u{start:04x}-\\u{end - 1:04x}"
        for start, end in ours
    )
    return f"(?-i:[{body}])" if flags & regex.IGNORECASE else f"[{body}]"


def _runs(found: Iterator[regex.Match[str]] | Iterator[re.Match[str]]) -> list[tuple[int, int]]:
    # The maximal runs of matching code points describe the set exactly and are few (a few
    # hundred even for \w): one C scan per module, no string object per character.
    return [match.span() for match in found]


def _word_edge(letter: str, flags: int) -> str:
    """``\\b`` or ``\\B``, as written when ``\\w`` means the same in both, else in terms of
    ``regex``'s own ``\\w``."""
    word = _atom(r"\w", flags)
    if word == r"\w":
        return "\\" + letter
    edge = f"(?:(?<={word})(?!{word})|(?<!{word})(?={word}))"
    return edge if letter == "b" else f"(?!{edge})"


def _escape_end(source: str, i: int, *, ignore_case: bool) -> int:
    """The index after the escape at ``i``, if both modules read it alike."""
    if i + 1 >= len(source):
        raise _NotTwin
    letter = source[i + 1]
    end = i + 2
    if letter in _HEX:
        end += _HEX[letter]
        if not re.fullmatch(r"[0-9A-Fa-f]+", source[i + 2 : end]):
            raise _NotTwin  # \x{263a} and short forms are regex's own
    elif letter.isdigit():
        if letter == "0" or ignore_case or source[end : end + 1].isdigit():
            # Octal escapes, two-digit references, and a back-reference compared by each
            # module's own case folding.
            raise _NotTwin
    elif letter.isalnum() and letter not in _KNOWN_ESCAPES:
        raise _NotTwin  # \p{..}, \N{..}, \X, \G, \K, \m, \L<..>, \z and the like
    return end


def _class_end(source: str, i: int) -> int:
    """The index after the character class opening at ``i``; raises :class:`_NotTwin` on
    what only regex reads (nested sets, set operations)."""
    j = i + 1
    if j < len(source) and source[j] == "^":
        j += 1
    if j < len(source) and source[j] == "]":
        j += 1
    while j < len(source):
        char = source[j]
        if char == "\\":
            j += 2
            continue
        if char == "[" or source.startswith(("&&", "--", "||", "~~"), j):
            raise _NotTwin
        if char == "]":
            return j + 1
        j += 1
    raise _NotTwin


def _group_opening_end(source: str, i: int) -> int:
    """The index after the group opening at ``i`` (only openings both modules define)."""
    if not source.startswith("(?", i):
        return i + 1
    for opening in _GROUP_OPENINGS:
        if source.startswith(opening, i):
            return i + len(opening)
    named = _GROUP_NAME.match(source, i)
    if named is not None:
        return named.end()
    raise _NotTwin  # inline or scoped flags, (?P=name), (?|, (?(, recursion, comments
