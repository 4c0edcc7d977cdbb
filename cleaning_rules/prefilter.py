"""Cheap tests that tell when a rule's pattern cannot match, so its regex call can be skipped.

Every regex call runs under a time limit, and ``regex`` charges a few microseconds for that
alone, while ``"元" in text`` costs tens of nanoseconds. Most fields hold nothing most rules look
for, so a rule first checks for strings that every match must contain.

The requirement is a small set of strings, at least one of which occurs in every match. It is
read from the pattern by a deliberately shallow parser: literal characters, groups, alternation,
small character classes and quantifiers are understood; anything else (lookarounds, properties,
back-references, fuzzy matching…) contributes nothing, and syntax it does not model gives no
prefilter at all. A wrong prefilter would silently skip a field the rule should change, so the
analysis only ever loses precision, never correctness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import regex

Requirement = frozenset[str]
CannotMatch = Callable[[str], bool]

_NO_PREFILTER_FLAGS = regex.VERBOSE | regex.VERSION1
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_BRACED_ESCAPES = frozenset("pPNx")  # \p{Han}, \N{NAME}, \x{263a}
_ANGLED_ESCAPES = frozenset("Lg")  # \L<name>, \g<name>
_COUNTED = regex.compile(r"\{(\d*)(?:,\d*)?\}")
_FLAG_LETTERS = regex.compile(r"[a-zA-Z0-9]*(?:-[a-zA-Z]+)?")
_MAX_CLASS = 16  # a larger class (a-z, \w) says too little to be worth testing
_MAX_STRINGS = 4  # beyond this many strings, try a few characters that cover them all


class _Unsupported(Exception):
    """The pattern uses syntax this parser does not model: no prefilter."""


def pattern_prefilter(pattern: regex.Pattern[str]) -> CannotMatch | None:
    """A test that is True only when ``pattern`` cannot match the text, or None if unknown."""
    if pattern.flags & _NO_PREFILTER_FLAGS:
        return None
    try:
        required = _Parser(pattern.pattern).parse()
    except _Unsupported:
        return None
    return strings_prefilter(required, ignore_case=bool(pattern.flags & regex.IGNORECASE))


def strings_prefilter(
    required: Iterable[str] | None, *, ignore_case: bool = False
) -> CannotMatch | None:
    """A test that is True when none of ``required`` occurs in the text (None: no test).

    With ``ignore_case`` both sides are compared case-folded: two characters that match
    case-insensitively have the same full case folding, so a match still contains the folded
    string.
    """
    if required is None:
        return None
    strings = frozenset(s.casefold() if ignore_case else s for s in required)
    if not strings or "" in strings:
        return None
    test = _absent(strings)
    if ignore_case:
        return lambda text: test(_casefolded(text))
    return test


def _absent(strings: frozenset[str]) -> CannotMatch:
    """The fastest exact test for "none of ``strings`` is in the text" that stays selective."""
    if len(strings) > _MAX_STRINGS:
        strings = _cover(strings)
    if len(strings) > _MAX_STRINGS or (len(strings) > 1 and all(len(s) == 1 for s in strings)):
        # Characters: one C-level pass over the text; a string stands for one of its
        # characters, which loses selectivity but never skips a match.
        chars = frozenset(min(s) for s in strings)
        return chars.isdisjoint
    needles = sorted(strings)
    if len(needles) == 1:
        (a,) = needles
        return lambda text: a not in text
    if len(needles) == 2:
        a, b = needles
        return lambda text: a not in text and b not in text
    if len(needles) == 3:
        a, b, c = needles
        return lambda text: a not in text and b not in text and c not in text
    a, b, c, d = needles
    return lambda text: a not in text and b not in text and c not in text and d not in text


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


def required_strings(pattern: regex.Pattern[str]) -> Requirement | None:
    """The strings at least one of which occurs in every match (for tests and linting)."""
    if pattern.flags & _NO_PREFILTER_FLAGS:
        return None
    try:
        return _Parser(pattern.pattern).parse()
    except _Unsupported:
        return None


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
    def rank(req: Requirement) -> tuple[bool, int, int]:
        return (len(req) <= _MAX_STRINGS, min(map(len, req)), -len(req))

    return best is None or rank(candidate) > rank(best)


class _Parser:
    """Recursive descent over regex V0 syntax, computing requirements instead of a tree."""

    def __init__(self, source: str):
        self.source = source
        self.i = 0

    def parse(self) -> Requirement | None:
        required = self._alternation()
        if self.i != len(self.source):
            raise _Unsupported  # an unbalanced ')'
        return required

    def _peek(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.source[index] if index < len(self.source) else ""

    def _alternation(self) -> Requirement | None:
        branches = [self._sequence()]
        while self._peek() == "|":
            self.i += 1
            branches.append(self._sequence())
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
            required, char = self._atom()
            minimum = self._quantifier()
            if minimum == 0:
                close()  # optional: it requires nothing, and its neighbours are not adjacent
                continue
            if char is not None:
                extend(frozenset(char))
            elif required is not None and all(len(choice) == 1 for choice in required):
                extend(required)  # a small character class
            else:
                close()
                offer(required)
            if minimum is not None:
                close()  # repeated: what follows is not adjacent to the first occurrence
        close()
        return best

    def _atom(self) -> tuple[Requirement | None, str | None]:
        """(requirement of a non-literal atom, or the literal character) at the cursor."""
        char = self._peek()
        if char == "\\":
            return None, self._escape()
        if char == "[":
            return self._class(), None
        if char == "(":
            return self._group(), None
        if char in "*+?{":
            raise _Unsupported  # a quantifier with nothing to repeat
        self.i += 1
        if char in ".^$]}":
            return None, None
        return None, char

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

    def _escape(self) -> str | None:
        """The literal character of the escape at the cursor (consumed), or None."""
        if self.i + 1 >= len(self.source):
            raise _Unsupported
        char = self.source[self.i + 1]
        self.i += 2
        if char in _HEX_ESCAPES and self._peek() != "{":
            digits = self.source[self.i : self.i + _HEX_ESCAPES[char]]
            if len(digits) != _HEX_ESCAPES[char] or not all(
                d in "0123456789abcdefABCDEF" for d in digits
            ):
                raise _Unsupported
            self.i += len(digits)
            return chr(int(digits, 16))
        if char in _BRACED_ESCAPES and self._peek() == "{":
            self._skip_to("}")
            return None
        if char in _ANGLED_ESCAPES and self._peek() == "<":
            self._skip_to(">")
            return None
        if char in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[char]
        if char.isascii() and char.isalnum():
            while char.isdigit() and self._peek().isdigit():
                self.i += 1  # a back-reference or octal escape
            return None
        return char  # an escaped punctuation or non-ASCII character is itself

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
                if last is None or not 0 <= ord(last) - ord(member) < _MAX_CLASS:
                    known = False
                else:
                    members.update(map(chr, range(ord(member), ord(last) + 1)))
            else:
                members.add(member)
        if not known or not members or len(members) > _MAX_CLASS:
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
        self.i += 1
        required = self._alternation()
        return None if "i" in on else required
