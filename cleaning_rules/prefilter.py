"""Cheap tests that tell when a rule's pattern cannot match, so its regex call can be skipped.

Every regex call runs under a time limit, and ``regex`` charges a few microseconds for that
alone (it reads the process clock), while ``"元" in text`` costs tens of nanoseconds. Most fields
hold nothing most rules look for, so a rule first checks for strings that every match must
contain.

The requirement is a small set of strings, at least one of which occurs in every match. It is
read from the pattern by a deliberately shallow parser: literal characters, groups, alternation,
character classes and quantifiers are understood; anything else (lookarounds, properties,
back-references, fuzzy matching…) contributes nothing, and syntax it does not model gives no
prefilter at all. A wrong prefilter would silently skip a field the rule should change, so the
analysis only ever loses precision, never correctness.

Two more shapes are read from the same parse:

* a :class:`Trigger`, the characters at least one of which is in every match: coarser than the
  strings, but characters of many rules merge into one set, so an engine finds the few rules
  that can apply to a field with one pass over its text (``frozenset.intersection``);
* the alphabet of a pattern anchored at both ends (``^…$``): such a pattern matches only a text
  made of its own characters, so one character outside them rules it out (``^\\s*$`` and a
  text holding a letter), which no required string can express, since these patterns often
  match the empty text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import regex

Requirement = frozenset[str]
CannotMatch = Callable[[str], bool]

_NO_PREFILTER_FLAGS = regex.VERBOSE | regex.VERSION1
# Full case folding lets one character match two ("ß" and "ss"): an alphabet of single
# characters cannot describe that.
_NO_ALPHABET_FLAGS = _NO_PREFILTER_FLAGS | regex.FULLCASE | regex.MULTILINE
# The flags that decide which characters an atom matches, carried into the alphabet test.
_ALPHABET_FLAGS = regex.IGNORECASE | regex.ASCII | regex.UNICODE | regex.LOCALE
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_BRACED_ESCAPES = frozenset("pPNx")  # \p{Han}, \N{NAME}, \x{263a}
_ANGLED_ESCAPES = frozenset("Lg")  # \L<name>, \g<name>
_CLASS_ESCAPES = frozenset("dDsSwW")  # one character of a known class
_ZERO_WIDTH_ESCAPES = frozenset("bBAZzGmMK")  # positions, not characters
_COUNTED = regex.compile(r"\{(\d*)(?:,\d*)?\}")
_FLAG_LETTERS = regex.compile(r"[a-zA-Z0-9]*(?:-[a-zA-Z]+)?")
_MAX_CLASS = 16  # a larger class (a-z, \w) says too little to be worth testing…
# …unless it holds no ASCII character: then an ASCII text, most text in most fields, rules it
# out in constant time (``str.isascii``), and any other text with one set lookup per character.
_MAX_WIDE_CLASS = 256
# Up to this many required strings are each looked for (a C-level search apiece, selective
# even in a long text); beyond, a few characters that cover them all are.
_MAX_STRINGS = 12
# ASCII characters from most to least frequent in the text these packs see; a trigger picks
# the rarest character of each required string. Characters not listed are rarer still.
_COMMON_ASCII = " etaoinsrhldcu0123456789.,mfpgwybv-:/kxjqz"


class _Unsupported(Exception):
    """The pattern uses syntax this parser does not model: no prefilter."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """Characters at least one of which is in every text that a rule can change or match.

    A rule whose trigger is absent from a text leaves that text alone. ``fold``: the characters
    are case-folded and stand for every character whose case folding contains them (an
    ``IGNORECASE`` rule). ``nonascii``: any character outside ASCII triggers the rule too.
    """

    chars: frozenset[str] = frozenset()
    fold: bool = False
    nonascii: bool = False

    def absent(self, text: str) -> bool:
        """True when ``text`` holds nothing that triggers the rule (the rule cannot apply)."""
        if self.nonascii and not text.isascii():
            return False
        return self.chars.isdisjoint(text.casefold() if self.fold else text)


def fold_preimage(char: str) -> frozenset[str]:
    """``char`` and every character whose case folding contains it (``k``: K and the Kelvin
    sign; ``s``: S, ß, the long s…): the characters a text may hold where a folded trigger
    matched."""
    return _fold_preimages().get(char, frozenset()) | {char}


@cache
def _fold_preimages() -> dict[str, frozenset[str]]:
    # One pass over every code point, once per process (a fraction of a second).
    found: dict[str, set[str]] = {}
    for code in range(0x110000):
        char = chr(code)
        folded = char.casefold()
        if folded != char:
            for part in folded:
                found.setdefault(part, set()).add(char)
    return {part: frozenset(chars) for part, chars in found.items()}


def pattern_prefilter(pattern: regex.Pattern[str]) -> CannotMatch | None:
    """A test that is True only when ``pattern`` cannot match the text, or None if unknown."""
    analysis = _analyse(pattern)
    if analysis is None:
        return None
    required, alphabet = analysis
    strings = strings_prefilter(required, ignore_case=bool(pattern.flags & regex.IGNORECASE))
    if alphabet is None:
        return strings
    outside = _outside_alphabet(regex.compile(alphabet, pattern.flags & _ALPHABET_FLAGS))
    if strings is None:
        return outside
    return lambda text: strings(text) or outside(text)


def pattern_alphabet(pattern: regex.Pattern[str]) -> CannotMatch | None:
    """For a pattern anchored at both ends (``^…$``), a test that is True when a text holds a
    character that no atom of the pattern matches: the pattern cannot match that text, nor any
    text that holds it (a line of a longer text, say). None for other patterns."""
    analysis = _analyse(pattern)
    if analysis is None or analysis[1] is None:
        return None
    return _outside_alphabet(regex.compile(analysis[1], pattern.flags & _ALPHABET_FLAGS))


def pattern_trigger(pattern: regex.Pattern[str]) -> Trigger | None:
    """The :class:`Trigger` of ``pattern`` (None when no set of characters is required)."""
    analysis = _analyse(pattern)
    if analysis is None:
        return None
    return strings_trigger(analysis[0], ignore_case=bool(pattern.flags & regex.IGNORECASE))


def strings_prefilter(
    required: Iterable[str] | None, *, ignore_case: bool = False
) -> CannotMatch | None:
    """A test that is True when none of ``required`` occurs in the text (None: no test).

    With ``ignore_case`` both sides are compared case-folded: two characters that match
    case-insensitively have the same full case folding, so a match still contains the folded
    string.
    """
    strings = _needles(required, ignore_case)
    if strings is None:
        return None
    test = _absent(strings)
    if ignore_case:
        return lambda text: test(_casefolded(text))
    return test


def strings_trigger(required: Iterable[str] | None, *, ignore_case: bool = False) -> Trigger | None:
    """A :class:`Trigger` that fires wherever one of ``required`` may occur (None: no test).

    One character of each string, the rarest, stands for it: a text that holds a string holds
    each of its characters.
    """
    strings = _needles(required, ignore_case)
    if strings is None:
        return None
    chars = frozenset(min(string, key=_commonness) for string in strings)
    return Trigger(chars, fold=ignore_case)


def required_strings(pattern: regex.Pattern[str]) -> Requirement | None:
    """The strings at least one of which occurs in every match (for tests and linting)."""
    analysis = _analyse(pattern)
    return None if analysis is None else analysis[0]


def _analyse(pattern: regex.Pattern[str]) -> tuple[Requirement | None, str | None] | None:
    """(required strings, alphabet pattern) of ``pattern``; None when it cannot be parsed."""
    if pattern.flags & _NO_PREFILTER_FLAGS:
        return None
    parser = _Parser(pattern.pattern)
    try:
        required = parser.parse()
    except _Unsupported:
        return None
    alphabet = None
    if parser.anchored() and not pattern.flags & _NO_ALPHABET_FLAGS and parser.atoms:
        alphabet = "|".join(parser.atoms)
    return required, alphabet


def _needles(required: Iterable[str] | None, ignore_case: bool) -> frozenset[str] | None:
    if required is None:
        return None
    strings = frozenset(s.casefold() if ignore_case else s for s in required)
    if not strings or "" in strings:
        return None
    return strings


def _commonness(char: str) -> int:
    index = _COMMON_ASCII.find(char.lower()) if char.isascii() else -1
    return index + 1  # 0: not listed, rarest


def _absent(strings: frozenset[str]) -> CannotMatch:
    """The fastest exact test for "none of ``strings`` is in the text" that stays selective."""
    test = _absent_anywhere(strings)
    if any(string.isascii() for string in strings):
        return test
    # Every needle holds a character outside ASCII: an ASCII text (a flag CPython keeps on the
    # string, read in constant time) holds none of them.
    return lambda text: text.isascii() or test(text)


def _absent_anywhere(strings: frozenset[str]) -> CannotMatch:
    if len(strings) > _MAX_STRINGS:
        strings = _cover(strings)
    if len(strings) > _MAX_STRINGS or (len(strings) > 1 and all(len(s) == 1 for s in strings)):
        # Characters: one C-level pass over the text; a string stands for one of its
        # characters, which loses selectivity but never skips a match.
        return no_char_of(frozenset(min(s) for s in strings))
    needles = sorted(strings)
    if len(needles) == 1:
        (a,) = needles
        return lambda text: a not in text
    if len(needles) == 2:
        a, b = needles
        return lambda text: a not in text and b not in text
    return lambda text: not any(map(text.__contains__, needles))


def no_char_of(chars: Iterable[str]) -> CannotMatch:
    """A test that is True when the text holds none of ``chars`` (single characters).

    One scan by the standard library's ``re`` over a class of the characters written out: in
    C, with no object per character, several times faster on a long Chinese text than
    ``frozenset.isdisjoint``, which makes a string object for each character outside
    Latin-1. A class of literal characters without flags matches the same in any engine, and
    cannot backtrack.
    """
    members = "".join(re.escape(char) for char in sorted(chars))
    search = re.compile(f"[{members}]").search
    return lambda text: search(text) is None


def _outside_alphabet(judge: regex.Pattern[str]) -> CannotMatch:
    """A test that is True when the text holds a character that no atom of a fully anchored
    pattern matches. Each character is judged once, by the atoms themselves compiled as one
    alternation (so ``\\p{N}`` or a case-insensitive letter mean what they mean in the rule),
    and remembered; a text of known characters costs two set operations."""
    # `$` also matches before a final newline, which no atom needs to match.
    allowed: set[str] = {"\n"}
    denied: set[str] = set()

    def cannot_match(text: str) -> bool:
        if allowed.issuperset(text):
            return False
        if not denied.isdisjoint(text):
            return True
        for char in set(text).difference(allowed):
            # One character against single-character atoms: linear, cannot run away.
            if judge.fullmatch(char) is None:
                denied.add(char)
                return True
            allowed.add(char)
        return False

    return cannot_match


# The last text case-folded: consecutive rules test the same field value, so one fold serves
# them all. One tuple, read and written whole, so threads never pair a text with another's fold.
_last_fold: tuple[str, str] = ("", "")


def _casefolded(text: str) -> str:
    global _last_fold
    last = _last_fold
    if last[0] is text:
        return last[1]
    folded = text.casefold()
    _last_fold = (text, folded)
    return folded


def _cover(strings: frozenset[str]) -> frozenset[str]:
    """Fewer, shorter needles: characters such that each string contains one of them."""
    left = set(strings)
    chosen: set[str] = set()
    while left:
        counts: dict[str, int] = {}
        for string in left:
            for char in set(string):
                counts[char] = counts.get(char, 0) + 1
        best = max(sorted(counts), key=lambda char: counts[char])
        chosen.add(best)
        left = {string for string in left if best not in string}
    return frozenset(chosen) if len(chosen) < len(strings) else strings


def _better(candidate: Requirement, best: Requirement | None) -> bool:
    # Few strings, none of them only white space (a line break is in most long texts), long.
    def rank(req: Requirement) -> tuple[bool, bool, int, int]:
        blank = any(string.isspace() for string in req)
        return (len(req) <= _MAX_STRINGS, not blank, min(map(len, req)), -len(req))

    return best is None or rank(candidate) > rank(best)


class _Parser:
    """Recursive descent over regex V0 syntax, computing requirements instead of a tree.

    On the way it collects ``atoms``, the source of every atom that consumes one character,
    wrapped in the scoped flags it is under (``(?i:[ab])``); None once an atom is met whose
    characters cannot be listed that way (``.``, ``\\X``, a named list).
    """

    def __init__(self, source: str):
        self.source = source
        self.i = 0
        self.atoms: list[str] | None = []
        self._scopes: list[str] = []
        self._top_branches = 0

    def parse(self) -> Requirement | None:
        required = self._alternation(top=True)
        if self.i != len(self.source):
            raise _Unsupported  # an unbalanced ')'
        return required

    def anchored(self) -> bool:
        """Whether the whole pattern is one branch between ``^``/``\\A`` and ``$``/``\\Z``."""
        source = self.source
        if self._top_branches != 1 or not source.startswith(("^", "\\A")):
            return False
        if not source.endswith(("$", "\\Z", "\\z")):
            return False
        anchor = 1 if source.endswith("$") else 2
        # The final anchor is not itself escaped (``\$`` is a literal dollar).
        backslashes = len(source[: len(source) - anchor]) - len(
            source[: len(source) - anchor].rstrip("\\")
        )
        return backslashes % 2 == 0

    def _record(self, start: int) -> None:
        """Add the atom ``source[start:i]`` to the alphabet, under the enclosing flags."""
        if self.atoms is None:
            return
        atom = self.source[start : self.i]
        for scope in reversed(self._scopes):
            atom = f"(?{scope}:{atom})"
        self.atoms.append(atom)

    def _peek(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.source[index] if index < len(self.source) else ""

    def _alternation(self, *, top: bool = False) -> Requirement | None:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._sequence())
        if top:
            self._top_branches = len(branches)
        if any(branch is None for branch in branches):
            return None
        return frozenset().union(*branches)  # type: ignore[arg-type]

    def _sequence(self) -> Requirement | None:
        best: Requirement | None = None
        # The strings the adjacent required atoms so far can spell: "[mM]g" gives {"mg", "Mg"}.
        run: set[str] = {""}

        def offer(candidate: Requirement | None) -> None:
            nonlocal best
            if candidate and _better(candidate, best):
                best = candidate

        def close() -> None:
            if run != {""}:
                offer(frozenset(run))
            run.clear()
            run.add("")

        def extend(choices: Requirement) -> None:
            if len(run) * len(choices) > _MAX_CLASS:
                close()
            grown = {prefix + choice for prefix in run for choice in choices}
            run.clear()
            run.update(grown)

        while self._peek() not in ("", "|", ")"):
            required, char, one_char = self._atom()
            minimum = self._quantifier()
            if minimum == 0:
                close()  # optional: it requires nothing, and its neighbours are not adjacent
                continue
            if char is not None:
                extend(frozenset(char))
            elif required is not None and one_char:
                extend(required)  # a character class: exactly one of its members
            else:
                close()
                offer(required)
            if minimum is not None:
                close()  # repeated: what follows is not adjacent to the first occurrence
        close()
        return best

    def _atom(self) -> tuple[Requirement | None, str | None, bool]:
        """(requirement of a non-literal atom, or the literal character, and whether the atom
        is one character of the requirement) at the cursor. A group's requirement occurs
        somewhere in what the group matches, so it does not join its neighbours: in
        ``a(?:x*b|c)`` the text "axb" holds neither "ab" nor "ac"."""
        start = self.i
        char = self._peek()
        if char == "\\":
            return None, self._escape(start), False
        if char == "[":
            members = self._class()
            self._record(start)
            return members, None, True
        if char == "(":
            return self._group(), None, False
        if char in "*+?{":
            raise _Unsupported  # a quantifier with nothing to repeat
        self.i += 1
        if char == ".":
            self.atoms = None  # any character: no alphabet
        if char in ".^$":
            return None, None, False
        self._record(start)
        if char in "]}":
            return None, None, False
        return None, char, False

    def _quantifier(self) -> int | None:
        """The minimum count of the quantifier at the cursor (consumed), or None if none."""
        char = self._peek()
        if char in ("*", "?"):
            minimum = 0
            self.i += 1
        elif char == "+":
            minimum = 1
            self.i += 1
        elif char == "{":
            counted = _COUNTED.match(self.source, self.i)
            if counted is None:
                raise _Unsupported  # a literal '{' or a fuzzy constraint: not guessed at
            minimum = int(counted.group(1) or 0)
            self.i = counted.end()
        else:
            return None
        if self._peek() in ("?", "+"):
            self.i += 1  # lazy or possessive: same minimum
        return minimum

    def _escape(self, start: int | None = None) -> str | None:
        """The literal character of the escape at the cursor (consumed), or None.

        With ``start`` (an escape outside a class) the escape is also added to the alphabet
        when it stands for characters, or ends the alphabet when they cannot be listed.
        """
        if self.i + 1 >= len(self.source):
            raise _Unsupported
        char = self.source[self.i + 1]
        self.i += 2
        literal: str | None = None
        consumes = True
        if char in _HEX_ESCAPES and self._peek() != "{":
            digits = self.source[self.i : self.i + _HEX_ESCAPES[char]]
            if len(digits) != _HEX_ESCAPES[char] or not all(
                d in "0123456789abcdefABCDEF" for d in digits
            ):
                raise _Unsupported
            self.i += len(digits)
            literal = chr(int(digits, 16))
        elif char in _BRACED_ESCAPES and self._peek() == "{":
            self._skip_to("}")
        elif char in _ANGLED_ESCAPES and self._peek() == "<":
            self._skip_to(">")
            if char == "L" and start is not None:
                self.atoms = None  # a named list of strings
            consumes = False  # \g<name> repeats a group's characters, already listed
        elif char in _SIMPLE_ESCAPES:
            literal = _SIMPLE_ESCAPES[char]
        elif char.isascii() and char.isalnum():
            while char.isdigit() and self._peek().isdigit():
                self.i += 1  # a back-reference or octal escape
            if char.isdigit() or char in _ZERO_WIDTH_ESCAPES:
                consumes = False
            elif char not in _CLASS_ESCAPES and start is not None:
                self.atoms = None  # \X and other escapes whose characters are not listed
        else:
            literal = char  # an escaped punctuation or non-ASCII character is itself
        if start is not None and consumes:
            self._record(start)
        return literal

    def _skip_to(self, closing: str) -> None:
        end = self.source.find(closing, self.i)
        if end < 0:
            raise _Unsupported
        self.i = end + 1

    def _class(self) -> Requirement | None:
        """Members of a small class of plain characters, else None (cursor after ``]``)."""
        self.i += 1
        members: set[str] = set()
        known = True
        if self._peek() == "^":
            known = False
            self.i += 1
        if self._peek() == "]":
            members.add("]")
            self.i += 1
        while True:
            char = self._peek()
            if char == "":
                raise _Unsupported
            if char == "]":
                self.i += 1
                break
            if char == "[" and self._peek(1) == ":":
                self._skip_to("]")  # [:alpha:]
                known = False
                continue
            member = self._escape() if char == "\\" else self._take()
            if member is None:
                known = False
            elif self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.i += 1  # a range
                last = self._escape() if self._peek() == "\\" else self._take()
                if last is None or not 0 <= ord(last) - ord(member) < _MAX_WIDE_CLASS:
                    known = False
                else:
                    members.update(map(chr, range(ord(member), ord(last) + 1)))
            else:
                members.add(member)
        if not known or not members or len(members) > _MAX_WIDE_CLASS:
            return None
        if len(members) > _MAX_CLASS and any(member.isascii() for member in members):
            return None
        return frozenset(members)

    def _take(self) -> str:
        char = self.source[self.i]
        self.i += 1
        return char

    def _group(self) -> Requirement | None:
        self.i += 1  # (
        required: Requirement | None
        if self._peek() != "?":
            required = self._alternation()  # capturing group
        else:
            kind = self._peek(1)
            if kind in (":", ">", "|"):
                self.i += 2
                required = self._alternation()
            elif kind in ("=", "!") or (kind == "<" and self._peek(2) in ("=", "!")):
                self.i += 2 if kind != "<" else 3
                self._alternation()  # a lookaround matches no characters of its own
                required = None
            elif (kind == "P" and self._peek(2) == "<") or (kind == "<"):
                self._skip_to(">")
                required = self._alternation()
            elif kind == "#":
                self._skip_to(")")
                return None
            else:
                required = self._flags_group()
        if self._peek() != ")":
            raise _Unsupported
        self.i += 1
        return required

    def _flags_group(self) -> Requirement | None:
        self.i += 1  # ?
        flags = _FLAG_LETTERS.match(self.source, self.i)
        assert flags is not None  # the pattern matches the empty string
        on = flags.group().split("-")[0]
        self.i = flags.end()
        if self._peek() == ")":
            return None  # (?i) applies to the whole pattern: seen in the compiled flags
        if self._peek() != ":" or not flags.group():
            raise _Unsupported  # conditionals, recursion, (?P=name)…
        if "x" in on or "V" in on:
            raise _Unsupported  # verbose or version-1 syntax inside: parsed differently
        if "f" in on or "m" in on:
            self.atoms = None  # full case folding or line anchors inside: no alphabet
        self.i += 1
        self._scopes.append(flags.group())
        try:
            required = self._alternation()
        finally:
            self._scopes.pop()
        return None if "i" in on else required
