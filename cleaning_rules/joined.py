"""One regex call for many values: a rule's pattern rewritten to run over values joined by a
separator, with the same result on each value as a call of its own.

A regex call under a time limit costs a few microseconds before it reads a character (``regex``
reads the process's CPU clock, a system call), which is more than matching a short field
takes. A batch of values therefore goes through each rule in chunks: the values of a chunk are
joined with :data:`SEPARATOR`, the rewritten pattern runs once over the join under the same
time limit, and the result is split again.

The rewritten pattern is equivalent on each value because no part of it can consume the
separator and every position test treats the separator as the edge of a value:

* the separator is U+FDD0, a noncharacter: no text holds it (a chunk that does is run value by
  value), it has no case, and ``\\w``, ``\\s``, ``\\d`` and letter, number, punctuation or
  symbol properties never match it, so ``\\b`` and lookarounds see it as they see a text's edge;
* the atoms that would match it (``.``, ``[^…]``, ``\\S``, ``\\W``, ``\\D``, ``\\P{…}``) get it
  added to what they exclude, and every other atom is checked against it;
* ``^``/``\\A`` also match after a separator, ``$``/``\\Z``/``\\z`` also before one.

Anything this rewriter does not model (verbose or version-1 syntax, conditionals, recursion,
fuzzy matching, scoped flags other than case and ASCII, ``\\G``, ``\\K``, ``\\X``, named lists)
leaves the rule to run value by value. A rewritten pattern must also reproduce its rule's
golden examples, joined, before it is used.

The time limit holds per value: a chunk that runs past it is run again value by value, each
under the limit, so only a value that runs away on its own is quarantined.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

import regex

SEPARATOR = "\ufdd0"
_SEP = "\\ufdd0"  # as written in a pattern
# Chunks small enough that a normal chunk takes a small part of the time limit (about a
# millisecond), large enough that the cost of a call is shared by many values.
CHUNK_VALUES = 256
CHUNK_CHARS = 16_384

_ALLOWED_FLAGS = (
    regex.IGNORECASE | regex.MULTILINE | regex.DOTALL | regex.ASCII | regex.UNICODE | regex.VERSION0
)
_SCOPED_FLAGS = frozenset("iau-")
_NEGATABLE = {"S": "\\s", "W": "\\w", "D": "\\d"}
_COUNTED = regex.compile(r"\{\d*(?:,\d*)?\}")
_UNSUPPORTED_ESCAPES = frozenset("GKXLRQE")
_CHECK_TIMEOUT_S = 1.0

# A text rule's rewrite over a joined text: (joined text, timeout) -> rewritten joined text.
JoinedRewrite = Callable[[str, float | None], str]


class _Unbatchable(Exception):
    """The pattern uses syntax the rewriter does not model: it runs value by value."""


def line_local(pattern: regex.Pattern[str]) -> bool:
    """Whether ``pattern`` finds in a text of several lines exactly what it finds in each line
    on its own: no atom of it can match a line break, and its only anchors are word edges and
    the multi-line ``^`` and ``$``, which see a line break as they see a text's edge. A rule
    with such a pattern rewrites (or judges) a text as the lines' results joined (``plan.py``
    runs long texts line by line)."""
    if pattern.flags & ~_ALLOWED_FLAGS:
        return False
    try:
        _Rewriter(pattern.pattern, pattern.flags, "\n", in_place=True).rewrite()
    except (_Unbatchable, regex.error):
        return False
    return True


# One atom repeated, X+: a property or class, an escape, or a plain character.
_ATOM_RUN = regex.compile(
    r"(?:\\[pP]\{\^?[\w=:-]+\}|\[\^?\]?(?:\\.|[^\]\\\[])*\]|\\[^pPNxuUgG0-9]|[^\\\[\]().*+?{}|^$])\+"
)


def atom_runs(pattern: regex.Pattern[str]) -> bool:
    """Whether ``pattern`` is one atom repeated (``\\P{No}+``): its matches are the longest
    runs of characters the atom matches, so that, split at line breaks, the matches of a text
    are the matches of its lines (and the line breaks, where the atom matches them)."""
    return pattern.flags & ~_ALLOWED_FLAGS == 0 and _ATOM_RUN.fullmatch(pattern.pattern) is not None


def joined_pattern(pattern: regex.Pattern[str]) -> regex.Pattern[str] | None:
    """``pattern`` rewritten to run over separator-joined values, or None if it cannot be."""
    if pattern.flags & ~_ALLOWED_FLAGS:
        return None
    try:
        source = _Rewriter(pattern.pattern, pattern.flags).rewrite()
        return regex.compile(source, pattern.flags)
    except (_Unbatchable, regex.error):
        return None


def chunks(values: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` ranges of ``values``, each at most :data:`CHUNK_VALUES` values and
    about :data:`CHUNK_CHARS` characters (a longer value has a chunk of its own)."""
    ranges: list[tuple[int, int]] = []
    start = size = 0
    for index, value in enumerate(values):
        if index > start and (index - start >= CHUNK_VALUES or size + len(value) > CHUNK_CHARS):
            ranges.append((start, index))
            start, size = index, 0
        size += len(value) + 1
    if start < len(values):
        ranges.append((start, len(values)))
    return ranges


def split_joined(text: str, count: int) -> list[str] | None:
    """The ``count`` values of a joined text, or None when it does not hold exactly that many
    (a replacement wrote a separator)."""
    pieces = text.split(SEPARATOR)
    return pieces if len(pieces) == count else None


class _Rewriter:
    """Copies a V0 pattern, rewriting the atoms and anchors described in the module docstring.

    With ``in_place``, nothing is rewritten: whatever would need rewriting (an atom or anchor
    that could match or read past the separator) raises :class:`_Unbatchable` instead, so a
    pattern that passes is equivalent on the joined text as it is written.
    """

    def __init__(self, source: str, flags: int, separator: str = SEPARATOR, *, in_place=False):
        self.source = source
        self.flags = flags
        self.separator = separator
        self.in_place = in_place
        self.i = 0
        self.out: list[str] = []

    def rewrite(self) -> str:
        source = self.source
        while self.i < len(source):
            char = source[self.i]
            if char == "\\":
                self._escape()
            elif char == "[":
                self._class()
            elif char == "(":
                self._group()
            elif char == "{":
                counted = _COUNTED.match(source, self.i)
                if counted is None:
                    raise _Unbatchable  # a literal brace or a fuzzy constraint
                self.out.append(counted.group())
                self.i = counted.end()
            elif char == "." and self.in_place:
                self.i += 1
                self._atom(".")
            elif char in "^$" and self.in_place:
                if not self.flags & regex.MULTILINE:
                    raise _Unbatchable  # the text's edges, not a line's
                self.i += 1
                self.out.append(char)
            elif char == ".":
                self.i += 1
                self.out.append(f"[^{_SEP}]" if self.flags & regex.DOTALL else f"[^\\n{_SEP}]")
            elif char == "^":
                self.i += 1
                self.out.append(self._start_anchor())
            elif char == "$":
                self.i += 1
                self.out.append(
                    f"(?:$|(?={_SEP}))"
                    if self.flags & regex.MULTILINE
                    else f"(?=\\n?(?:{_SEP}|\\Z))"
                )
            else:
                if char == self.separator:
                    raise _Unbatchable
                self.i += 1
                self.out.append(char)
        return "".join(self.out)

    def _start_anchor(self) -> str:
        return f"(?:^|(?<={_SEP}))" if self.flags & regex.MULTILINE else f"(?:\\A|(?<={_SEP}))"

    def _atom(self, atom: str) -> None:
        """Copy an atom that consumes one character, after checking it cannot be the separator."""
        try:
            matches = regex.compile(atom, self.flags).fullmatch(self.separator) is not None
        except regex.error as exc:
            raise _Unbatchable from exc
        if matches:
            raise _Unbatchable
        self.out.append(atom)

    def _escape(self) -> None:
        source = self.source
        if self.i + 1 >= len(source):
            raise _Unbatchable
        letter = source[self.i + 1]
        start = self.i
        self.i += 2
        if letter in "pPNx" and source.startswith("{", self.i):
            end = source.find("}", self.i)
            if end < 0:
                raise _Unbatchable
            self.i = end + 1
            body = source[start + 3 : end]
            if self.in_place:
                self._atom(source[start : self.i])
            elif letter == "P" or (letter == "p" and body.startswith("^")):
                self._atom(f"[^\\p{{{body.lstrip('^')}}}{_SEP}]")
            else:
                self._atom(source[start : self.i])
            return
        if letter in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[letter]
            self.i += width
            self._atom(source[start : self.i])
            return
        if letter == "g" and source.startswith("<", self.i):
            end = source.find(">", self.i)
            if end < 0:
                raise _Unbatchable
            self.i = end + 1
            self.out.append(source[start : self.i])  # a back-reference
            return
        if letter in _UNSUPPORTED_ESCAPES or (self.in_place and letter in "AZz"):
            raise _Unbatchable
        if letter == "A":
            self.out.append(f"(?:\\A|(?<={_SEP}))")
        elif letter in "Zz":
            self.out.append(f"(?={_SEP}|\\Z)")
        elif letter in _NEGATABLE and not self.in_place:
            self._atom(f"[^{_NEGATABLE[letter]}{_SEP}]")
        elif letter.isdigit():
            while self.i < len(source) and source[self.i].isdigit():
                self.i += 1
            self.out.append(source[start : self.i])  # a back-reference or an octal escape
        elif letter in "bBmM":
            self.out.append(source[start : self.i])  # word edges: the separator is no word
        else:
            self._atom(source[start : self.i])

    def _class(self) -> None:
        source = self.source
        start = self.i
        self.i += 1
        negated = source.startswith("^", self.i)
        if negated:
            self.i += 1
        if source.startswith("]", self.i):
            self.i += 1
        while True:
            if self.i >= len(source):
                raise _Unbatchable
            char = source[self.i]
            if char == "\\":
                self.i += 2
            elif char == "[" and source.startswith("[:", self.i):
                end = source.find(":]", self.i)
                if end < 0:
                    raise _Unbatchable
                self.i = end + 2
            elif char == "]":
                self.i += 1
                break
            elif char == self.separator:
                raise _Unbatchable
            else:
                self.i += 1
        atom = source[start : self.i]
        if negated and not self.in_place:
            atom = atom[:-1] + _SEP + "]"
        self._atom(atom)

    def _group(self) -> None:
        source = self.source
        if not source.startswith("(?", self.i):
            self.i += 1
            self.out.append("(")
            return
        for prefix in ("(?:", "(?>", "(?|", "(?=", "(?!", "(?<=", "(?<!"):
            if source.startswith(prefix, self.i):
                self.i += len(prefix)
                self.out.append(prefix)
                return
        for prefix in ("(?P<", "(?<"):
            if source.startswith(prefix, self.i):
                end = source.find(">", self.i)
                if end < 0:
                    raise _Unbatchable
                self.out.append(source[self.i : end + 1])
                self.i = end + 1
                return
        if source.startswith("(?P=", self.i):
            end = source.find(")", self.i)
            if end < 0:
                raise _Unbatchable
            self.out.append(source[self.i : end + 1])  # a named back-reference
            self.i = end + 1
            return
        if source.startswith("(?#", self.i):
            end = source.find(")", self.i)
            if end < 0:
                raise _Unbatchable
            self.i = end + 1
            return
        # Inline flags, (?i) or (?i:…): only those that do not change anchors or '.'.
        j = self.i + 2
        while j < len(source) and source[j] not in ":)":
            j += 1
        letters = source[self.i + 2 : j]
        if j >= len(source) or not letters or not set(letters) <= _SCOPED_FLAGS:
            raise _Unbatchable  # conditionals, recursion, other flags
        self.out.append(source[self.i : j + 1])
        self.i = j + 1


def sub_each(
    joined: JoinedRewrite,
    single: Callable[[str, float | None], str],
    values: Sequence[str],
    timeout: float | None,
) -> list[str | None]:
    """Each of ``values`` rewritten, chunk by chunk through ``joined``; None for a value that
    ran past ``timeout`` on its own. ``single`` is the rule's own rewrite, the fallback."""
    out: list[str | None] = []
    for start, end in chunks(values):
        chunk = values[start:end]
        pieces = sub_joined(joined, chunk, timeout) if len(chunk) > 1 else None
        if pieces is None:
            out.extend(_sub_single(single, value, timeout) for value in chunk)
        else:
            out.extend(pieces)
    return out


def sub_joined(
    joined: JoinedRewrite, chunk: Sequence[str], timeout: float | None
) -> list[str] | None:
    """``chunk`` rewritten in one call; None when it cannot be (a value holds the separator,
    the call ran past ``timeout``, a replacement wrote a separator)."""
    text = SEPARATOR.join(chunk)
    if text.count(SEPARATOR) != len(chunk) - 1:
        return None
    try:
        return split_joined(joined(text, timeout), len(chunk))
    except TimeoutError:
        return None


def _sub_single(
    single: Callable[[str, float | None], str], value: str, timeout: float | None
) -> str | None:
    try:
        return single(value, timeout)
    except TimeoutError:
        return None


def search_each(
    joined: regex.Pattern[str],
    single: Callable[[str, float | None], bool],
    values: Sequence[str],
    timeout: float | None,
) -> list[bool | None]:
    """For each of ``values``, whether the pattern occurs in it, chunk by chunk through the
    ``joined`` pattern; None for a value that ran past ``timeout`` on its own."""
    out: list[bool | None] = []
    for start, end in chunks(values):
        chunk = values[start:end]
        found = search_joined(joined, chunk, timeout) if len(chunk) > 1 else None
        if found is None:
            out.extend(_search_single(single, value, timeout) for value in chunk)
        else:
            out.extend(found)
    return out


def search_joined(
    joined: regex.Pattern[str], chunk: Sequence[str], timeout: float | None
) -> list[bool] | None:
    """For each value of ``chunk``, whether the pattern occurs in it, in one pass; None when
    it cannot be (a value holds the separator, a call ran past ``timeout``)."""
    text = SEPARATOR.join(chunk)
    if text.count(SEPARATOR) != len(chunk) - 1:
        return None
    starts = []
    position = 0
    for value in chunk:
        starts.append(position)
        position += len(value) + 1
    found = [False] * len(chunk)
    search = joined.search
    position = 0
    try:
        while True:
            # Positional (string, pos, endpos, concurrent, partial, timeout), as in rules.py.
            match = search(text, position, None, None, False, timeout)
            if match is None:
                return found
            index = bisect_right(starts, match.start()) - 1
            found[index] = True
            if index + 1 == len(chunk):
                return found
            position = starts[index + 1]  # the next value: one match per value is enough
    except TimeoutError:
        return None


def _search_single(
    single: Callable[[str, float | None], bool], value: str, timeout: float | None
) -> bool | None:
    try:
        return single(value, timeout)
    except TimeoutError:
        return None


def agrees(
    samples: Sequence[str],
    single: Callable[[str, float | None], object],
    joined: Callable[[Sequence[str], float | None], Sequence[object] | None],
) -> bool:
    """Whether one ``joined`` call over ``samples`` gives what ``single`` gives on each of
    them, in two orders: the check a rewritten pattern passes before it is used."""
    edges = ["", "\n", " ", "a\n", "\n\n"]
    try:
        for order in (list(samples) + edges, edges + list(reversed(samples))):
            got = joined(order, _CHECK_TIMEOUT_S)
            if got is None or list(got) != [single(value, _CHECK_TIMEOUT_S) for value in order]:
                return False
    except TimeoutError:
        return False
    return True
