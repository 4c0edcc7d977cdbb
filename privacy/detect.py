"""Find PII in text: pattern candidates, validated, scored with context, overlaps resolved.

``Detector.scan(text)`` returns non-overlapping ``Finding``s with character offsets.
``Detector.scan_many(texts)`` does the same for a column of texts (a tuple of findings per
text); it joins them into large chunks so that each pass runs once per chunk instead of once
per short text.

How a scan stays fast: running every pattern over the whole text costs one regex pass per
pattern, and Python's engine pays for each attempt at each digit. Instead, a few passes over
a class view of the text (each digit written ``0``, each capital ``A``, each small letter
``a``), one per first character of the anchors, find the anchors (``PatternSpec.anchor``),
and each pattern runs only over the clusters that hold its anchor. A cluster is a maximal
stretch of ASCII letters, digits and the punctuation the patterns use, with spaces only
between two digits or capitals. No pattern matches across a cluster's edge or looks past
one, so a pattern run over a cluster finds what it would find there in the whole text:
``scan_exhaustive`` is that whole-text definition, and the tests hold the fast scan to it.
Each pattern's matches in a chunk are then judged together (validator, context words, score),
step by step over all of them with ``map`` rather than one Python call per candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, compress, pairwise, repeat
from operator import attrgetter, getitem, is_, is_not, lt
from typing import NamedTuple

import numpy as np

from privacy.entities import (
    ANCHOR_TOKEN_START,
    ENTITY_REGISTRY,
    EntityType,
    PatternSpec,
    skipping_context_regex,
)
from privacy.validators import VALIDATORS, Validator, Verdict

_CONFIRMED, _REJECTED, _UNSURE = Verdict.CONFIRMED, Verdict.REJECTED, Verdict.UNSURE

# Added to a candidate's score when a context word of its type precedes it (Presidio's
# default context similarity factor).
CONTEXT_BOOST = 0.35
# Characters before a match searched for context words: enough for "身份证号码:" or
# "Social Security number:" with some spacing, short enough not to reach the previous field.
CONTEXT_WINDOW = 40
DEFAULT_THRESHOLD = 0.5

# Joins texts in scan_many. Neither character belongs to a cluster, so no match spans two
# texts.
_SEPARATOR = "\n\x1e\n"
_CHUNK_CHARS = 1 << 20

_CLUSTER_PUNCTUATION = b".:()+-_%@"
_CLASSES = (
    bytes(
        ord("0")
        if chr(i).isdigit()
        else ord("A")
        if chr(i).isupper()
        else ord("a")
        if chr(i).islower()
        else i
        if i in _CLUSTER_PUNCTUATION or i == ord(" ")
        else ord("#")
        for i in range(128)
    )
    + b"#" * 128
)
_OUTSIDE, _SPACE = b"# "  # the class of characters outside clusters, and of a space
_DIGIT, _CAPITAL, _SMALL = b"0Aa"
# The rest of a cluster from a position, over classes in which a space that joins no two
# digits or capitals is outside (``_close_clusters``).
_CLUSTER = re.compile(rb"[^#]*+")
_MATCH_START, _MATCH_END = re.Match.start, re.Match.end
_Ints = np.ndarray  # one-dimensional, of int64
_NO_INTS = np.zeros(0, np.int64)
_TEXT_AT_ZERO = np.zeros(1, np.int64)  # the starts of one text: at 0
# Full-width digits (U+FF10-FF19) are common in Chinese documents; they are read as ASCII
# digits. Looked for one digit at a time (``in`` runs in C without a regex), a tenth of the
# cost of a character class over the text or of a search in its UTF-8 encoding; digits of
# other scripts are not read.
_FULLWIDTH_DIGIT_CHARS = "０１２３４５６７８９"  # noqa: RUF001
_FULLWIDTH_DIGITS = str.maketrans(_FULLWIDTH_DIGIT_CHARS, "0123456789")
# Distinct cluster shapes remembered with the patterns they need; real data repeats a few
# hundred shapes, and the bound keeps free text with many distinct shapes from growing it.
_SHAPE_CACHE_SIZE = 1 << 16


class Finding(NamedTuple):
    """One piece of PII: ``text[start:end]`` is a ``type``, with a score and the reason.

    A named tuple rather than a frozen dataclass: the scan builds one per finding, and a
    frozen dataclass sets each field through ``object.__setattr__``, which costs three
    times as much.
    """

    type: str
    start: int
    end: int
    score: float
    pattern: str
    verdict: str
    context_word: str | None = None

    def explanation(self) -> str:
        """Which rule found it and why it scored as it did."""
        parts = [f"pattern {self.type}/{self.pattern}", f"validator {self.verdict}"]
        if self.context_word:
            parts.append(f"context {self.context_word!r}")
        return ", ".join(parts)

    def as_json(self, text: str | None = None) -> dict[str, object]:
        """The JSON shape of ``steward privacy scan``; the matched text only if given."""
        data: dict[str, object] = {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
            "explanation": self.explanation(),
        }
        if text is not None:
            data["text"] = text[self.start : self.end]
        return data


_VALUE = attrgetter("_value_")  # a verdict's value, as findings carry it

# Findings are built as ``_new_tuple(Finding, fields)``: the named tuple's own constructor is
# a Python function, which costs twice as much again, and the scan builds one per finding.
_new_tuple = tuple.__new__


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A pattern ready to run, with what judging its matches reads, looked up once."""

    type: str
    name: str
    # The score of a match by ``[confirmed][has a context word]``, ``None`` where it is
    # dropped (below the threshold, or no context word for a pattern that requires one).
    scores: tuple[tuple[float | None, float | None], tuple[float | None, float | None]]
    trims: bool  # retries a rejected match without its trailing groups (``PatternSpec.trim``)
    anchor: str
    regex: re.Pattern[str]
    anchor_regex: re.Pattern[bytes]
    context: re.Pattern[str]  # the type's context words, the whole match as group 1
    check: Validator | None

    @classmethod
    def of(cls, entity: EntityType, spec: PatternSpec, threshold: float) -> _Compiled:
        check = VALIDATORS[entity.validator] if entity.validator else None

        def score(confirmed: bool, has_word: bool) -> float | None:
            if spec.requires_context and not has_word:
                return None
            if confirmed:
                value = 1.0
            else:
                value = min(1.0, spec.score + CONTEXT_BOOST) if has_word else spec.score
            return value if value >= threshold else None

        return cls(
            type=entity.name,
            name=spec.name,
            scores=(
                (score(False, False), score(False, True)),
                (score(True, False), score(True, True)),
            ),
            trims=spec.trim,
            anchor=spec.anchor,
            regex=re.compile(spec.regex, re.ASCII),
            anchor_regex=re.compile(spec.anchor.encode("ascii")),
            context=skipping_context_regex(entity),
            check=check,
        )


class Detector:
    """Scan texts for the given entity types (default: all) at a score threshold."""

    def __init__(
        self,
        types: Iterable[str] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        context_window: int = CONTEXT_WINDOW,
    ):
        names = list(ENTITY_REGISTRY) if types is None else list(types)
        unknown = sorted(set(names) - set(ENTITY_REGISTRY))
        if unknown:
            raise ValueError(f"unknown PII types: {', '.join(unknown)}")
        self.types = tuple(n for n in ENTITY_REGISTRY if n in names)
        # Both fixed at construction: the patterns' score tables are built from the threshold.
        self.threshold = threshold
        self.context_window = context_window
        self._priority = {name: i for i, name in enumerate(ENTITY_REGISTRY)}
        self._compiled = [
            _Compiled.of(entity, spec, threshold)
            for entity in (ENTITY_REGISTRY[n] for n in self.types)
            for spec in entity.patterns
        ]
        # Each locator with whether it reads the classes with token digits marked.
        self._locators = _locators(c.anchor for c in self._compiled)
        self._marks_digits = any(marked for _, marked in self._locators)
        self._by_shape = _ShapeMasks(self._compiled)

    def scan(self, text: str) -> list[Finding]:
        """Findings in ``text``, sorted by start, not overlapping, at or above threshold."""
        return self._resolve(self._candidates(text, _TEXT_AT_ZERO)[3])

    def scan_many(self, texts: Sequence[str | None]) -> list[tuple[Finding, ...]]:
        """``scan`` for each text (``None`` gives no findings), offsets relative to each text.

        Each text's findings come as a tuple, the same empty one for every text without any.
        Tuples of findings hold nothing the garbage collector must follow, so it stops
        tracking them; a list per text would stay tracked, and a large batch of results
        would set off full collections, which walk the caller's whole heap.
        """
        results: list[tuple[Finding, ...]] = [()] * len(texts)
        # Texts and positions with list operations rather than a Python step per text (texts
        # are often short). Usually every text is present, and a list or tuple of them is
        # used as it is: a copy lives through the whole call, and every collection that
        # meets it walks all its items (1% of the instructions for short texts).
        present = (
            texts if isinstance(texts, list | tuple) and all(texts) else list(filter(None, texts))
        )
        members: Sequence[int] = (
            range(len(texts))
            if len(present) == len(texts)
            else [i for i, text in enumerate(texts) if text]
        )
        # Where each text would start in one join of them all; chunks are cut from it by size.
        lengths = np.fromiter(map(len, present), np.int64, len(present)) + len(_SEPARATOR)
        bounds = np.zeros(len(present) + 1, np.int64)
        np.cumsum(lengths, out=bounds[1:])
        first = 0
        while first < len(present):
            offset = int(bounds[first])
            last = int(np.searchsorted(bounds, offset + _CHUNK_CHARS))
            last = min(max(last, first + 1), len(present))
            chunk = _SEPARATOR.join(present[first:last])
            candidates = self._candidates(chunk, bounds[first:last] - offset)
            for index, found in zip(*self._per_text(*candidates), strict=True):
                results[members[first + index - 1]] = found
            first = last
        return results

    def _per_text(
        self, in_text: _Ints, begins: _Ints, ends: _Ints, findings: list[Finding]
    ) -> tuple[list[int], list[tuple[Finding, ...]]]:
        """``_candidates``' findings cut into a tuple per text, overlaps resolved.

        As the texts that have findings (their index plus one) and the tuples. The cuts and
        the overlap check are array operations, the tuples one ``map``: a text's findings are
        in order of start, so only two neighbours can overlap (texts never overlap each
        other), and only a text where two do goes through ``_resolve``.
        """
        if not findings:
            return [], []
        cuts = (np.flatnonzero(in_text[1:] != in_text[:-1]) + 1).tolist()
        firsts = [0, *cuts]
        texts = in_text[firsts].tolist()
        groups = list(map(tuple, map(findings.__getitem__, map(slice, firsts, [*cuts, None]))))
        overlaps = (ends[:-1] > begins[1:]) & (in_text[1:] == in_text[:-1])
        overlapping = set(in_text[1:][overlaps].tolist())
        if overlapping:
            for at in compress(range(len(texts)), map(overlapping.__contains__, texts)):
                groups[at] = tuple(self._resolve(list(groups[at])))
        return texts, groups

    def scan_exhaustive(self, text: str) -> list[Finding]:
        """``scan`` by running every pattern over the whole text: slow, and the definition.

        ``scan`` must return exactly this; the tests compare the two on tricky inputs.
        """
        view = _ascii_view(text)[0]
        found: list[Finding] = []
        for compiled in self._compiled:
            for match in compiled.regex.finditer(view):
                start, end = match.span()
                finding = self._judge(compiled, text, view, start, end, 0)
                if finding is not None:
                    found.append(finding)
        return self._resolve(found)

    def _candidates(self, text: str, starts: _Ints) -> tuple[_Ints, _Ints, _Ints, list[Finding]]:
        """Judged matches in ``text`` (texts joined, beginning at ``starts``), in order.

        As the index of each finding's text plus one, where it begins and ends in ``text``,
        and the findings, ordered by text and, within a text, by start (the stable sort keeps
        the patterns' order where two start together, as the exhaustive scan has them).
        """
        if not self._locators:
            return _NO_INTS, _NO_INTS, _NO_INTS, []
        view, raw = _ascii_view(text)
        classes = _close_clusters(raw.translate(_CLASSES))
        # Each locator hit runs from an anchor to the end of its cluster, so a cluster is
        # known by where it ends, whichever anchors it holds; it begins after the nearest
        # character outside clusters before that.
        marked = _mark_token_digits(classes) if self._marks_digits else classes
        cluster_ends: set[int] = set()
        for locator, on_marked in self._locators:
            cluster_ends.update(map(_MATCH_END, locator.finditer(marked if on_marked else classes)))
        # Arrays of ints by np.fromiter: np.array works out a type for each item of a list,
        # at twice the cost.
        ends_at = np.fromiter(cluster_ends, np.int64, len(cluster_ends))
        ends = ends_at.tolist()
        rfinds = map(classes.rfind, repeat(b"#"), repeat(0), ends)
        begins_at = np.fromiter(rfinds, np.int64, len(ends)) + 1
        shapes = map(classes.__getitem__, map(slice, begins_at.tolist(), ends))
        # Which patterns run over each cluster, a bit per pattern, by the cluster's shape.
        masks = np.fromiter(map(self._by_shape.__getitem__, shapes), np.int64, len(ends))
        # Each pattern's matches over its clusters, judged together. Offsets rather than
        # match objects: ints are no work for the garbage collector, and a chunk's thousands
        # of live matches were.
        bases = np.concatenate((_TEXT_AT_ZERO, starts))  # a text's start by its index plus one
        judged: list[tuple[_Ints, _Ints, _Ints, list[Finding]]] = []
        one_token = (masks & _ONE_TOKEN) != 0
        for index, compiled in enumerate(self._compiled):
            chosen = (masks & (1 << index)) != 0
            if not chosen.any():
                continue
            starts_at, match_ends = _search_clusters(
                compiled.regex,
                view,
                begins_at,
                ends_at,
                np.flatnonzero(chosen & one_token),
                np.flatnonzero(chosen & ~one_token),
            )
            if not starts_at:
                continue
            judged.append(
                self._judge_all(compiled, starts_at, match_ends, text, view, starts, bases)
            )
        if not judged:
            return _NO_INTS, _NO_INTS, _NO_INTS, []
        texts, firsts, lasts, found = zip(*judged, strict=True)
        in_text, begins, ends = map(np.concatenate, (texts, firsts, lasts))
        findings = list(chain.from_iterable(found))
        # Texts lie in the chunk in order, so the order of starts is that of (text, start).
        order = np.argsort(begins, kind="stable")
        findings = list(map(findings.__getitem__, order.tolist()))
        return in_text[order], begins[order], ends[order], findings

    def _judge_all(
        self,
        compiled: _Compiled,
        starts_at: list[int],
        ends: list[int],
        text: str,
        view: str,
        starts: _Ints,
        bases: _Ints,
    ) -> tuple[_Ints, _Ints, _Ints, list[Finding]]:
        """``_judge`` for each match (``view[start:end]``), over those kept: the index of
        its text plus one, where its finding begins and ends in ``text``, the finding.

        The same answers, but each step (validators aside) runs over all the matches at once,
        through ``map`` over C functions (slicing, the context window searched between two
        offsets, the score table, building findings) or as array operations (the text each
        match is in, offsets). The scan meets about 5,000 candidates per MB, and judging
        them one Python call at a time was half of its time. ``bases`` is ``[0, *starts]``,
        read at a match's ``searchsorted(starts, start, "right")``.
        """
        check = compiled.check
        retried: list[tuple[int, int, int, Finding]] = []
        if check is None:
            verdicts = [_UNSURE] * len(starts_at)
        else:
            verdicts = list(map(check, map(view.__getitem__, map(slice, starts_at, ends))))
            if _REJECTED in verdicts:
                kept = list(map(is_not, verdicts, repeat(_REJECTED)))
                if compiled.trims:
                    # Rare: a rejected match with groups to trim goes through _judge.
                    for start, end, ok in zip(starts_at, ends, kept, strict=True):
                        if not ok and " " in view[start:end]:
                            index = int(np.searchsorted(starts, start, "right"))
                            base = int(bases[index])
                            finding = self._judge(compiled, text, view, start, end, base)
                            if finding is not None:
                                retried.append((index, start, base + finding.end, finding))
                starts_at = list(compress(starts_at, kept))
                ends = list(compress(ends, kept))
                verdicts = list(compress(verdicts, kept))
        begins = np.fromiter(starts_at, np.int64, len(starts_at))
        stops = np.fromiter(ends, np.int64, len(ends))
        in_text = np.searchsorted(starts, begins, "right")
        text_starts = bases[in_text]
        # The context window: context_window characters before the match, not before its text.
        windows = np.maximum(text_starts, begins - self.context_window).tolist()
        found = list(map(compiled.context.search, repeat(text), windows, starts_at))
        words = list(map(_GROUP, map(_OR_NO_WORD, found, found), repeat(1)))
        scores = list(
            map(
                getitem,
                map(compiled.scores.__getitem__, map(is_, verdicts, repeat(_CONFIRMED))),
                map(is_not, words, repeat(None)),
            )
        )
        fields = zip(
            repeat(compiled.type),
            (begins - text_starts).tolist(),
            (stops - text_starts).tolist(),
            scores,
            repeat(compiled.name),
            map(_VALUE, verdicts),
            words,
        )
        findings = list(map(_new_tuple, repeat(Finding), fields))
        if None in scores:
            kept = list(map(is_not, scores, repeat(None)))
            in_text, begins, stops = in_text[kept], begins[kept], stops[kept]
            findings = list(compress(findings, kept))
        if retried:
            index, start, end, finding = zip(*retried, strict=True)
            in_text = np.concatenate((in_text, index))
            begins = np.concatenate((begins, start))
            stops = np.concatenate((stops, end))
            findings.extend(finding)
        return in_text, begins, stops, findings

    def _judge(
        self,
        compiled: _Compiled,
        text: str,
        view: str,
        start: int,
        end: int,
        base: int,
    ) -> Finding | None:
        """A finding for ``view[start:end]`` with offsets relative to ``base``, or ``None``.

        Validators read the ASCII view (full-width digits as ASCII); context words are
        looked for in the original text, not before ``base`` (the start of the text the
        match belongs to). The definition ``_judge_all`` keeps to, one match at a time.
        """
        check = compiled.check
        matched = view[start:end]
        verdict = _UNSURE if check is None else check(matched)
        while verdict is _REJECTED and check is not None and compiled.trims and " " in matched:
            end = view.rindex(" ", start, end)
            matched = view[start:end]
            verdict = check(matched)
        if verdict is _REJECTED:
            return None
        begin = start - self.context_window
        if begin < base:
            begin = base
        word = _context_word(compiled, text, begin, start)
        score = compiled.scores[verdict is _CONFIRMED][word is not None]
        if score is None:
            return None
        return _new_tuple(
            Finding,
            (
                compiled.type,
                start - base,
                end - base,
                score,
                compiled.name,
                # ``_value_`` is the member's plain attribute: ``.value`` is a property and
                # hashing a member (a dict keyed by members) calls Enum.__hash__ in Python.
                verdict._value_,
                word,
            ),
        )

    def _resolve(self, candidates: list[Finding]) -> list[Finding]:
        """Keep the best of overlapping findings: higher score, then longer, then priority.

        The fast scan gives a text's candidates in order of start; in order and apart, they
        are the answer as they stand.
        """
        if len(candidates) < 2 or all(a.end <= b.start for a, b in pairwise(candidates)):
            return candidates
        ranked = sorted(
            candidates,
            key=lambda f: (-f.score, -(f.end - f.start), self._priority[f.type], f.start),
        )
        kept: list[Finding] = []
        for finding in ranked:
            if all(finding.end <= k.start or finding.start >= k.end for k in kept):
                kept.append(finding)
        return sorted(kept, key=lambda f: f.start)


def _search_clusters(
    regex: re.Pattern[str], view: str, begins: _Ints, ends: _Ints, one_token: _Ints, rest: _Ints
) -> tuple[list[int], list[int]]:
    """The matches of ``regex`` in the clusters ``view[begin:end]`` at ``one_token`` and at
    ``rest`` (indices into ``begins`` and ``ends``), as starts and ends, in no particular order.

    One ``map`` searches all clusters of a kind: a search that finds nothing (most clusters
    hold no match of some of their patterns) costs only the engine's work. In a cluster of
    one token a match can begin only where the cluster does (``_ONE_TOKEN``), so the first
    attempt there is ``regex.match``, which tries that position alone. Most matches end
    their cluster; after the others, the search goes on to the cluster's end.
    """
    search = regex.search
    token_begins, token_ends = begins[one_token].tolist(), ends[one_token].tolist()
    rest_begins, rest_ends = begins[rest].tolist(), ends[rest].tolist()
    found = [
        *map(regex.match, repeat(view), token_begins, token_ends),
        *map(search, repeat(view), rest_begins, rest_ends),
    ]
    matched = list(map(is_not, found, repeat(None)))
    found = list(compress(found, matched))
    starts = list(map(_MATCH_START, found))
    stops = list(map(_MATCH_END, found))
    cluster_ends = list(compress([*token_ends, *rest_ends], matched))
    for at in compress(range(len(found)), map(lt, stops, cluster_ends)):
        end, stop = stops[at], cluster_ends[at]
        match = search(view, end, stop)
        while match is not None:
            start, end = match.span()
            starts.append(start)
            stops.append(end)
            match = search(view, end, stop) if end < stop else None
    return starts, stops


# A shape's bit for a cluster of one token: every character but the last is a letter or
# a digit. Every pattern's match begins after a character that is no ASCII letter or digit
# (the tests hold the patterns to this), so in such a cluster a match can begin only where
# the cluster does.
_ONE_TOKEN = 1 << 62


class _ShapeMasks(dict[bytes, int]):
    """The patterns to run over a cluster by its shape (its classes), as a bit per pattern
    (those whose anchor the shape holds), and ``_ONE_TOKEN``. Filled as shapes are met; real
    data repeats a few hundred, and the bound keeps free text with many distinct shapes
    from growing it.
    """

    def __init__(self, compiled: Sequence[_Compiled]):
        super().__init__()
        if (1 << len(compiled)) > _ONE_TOKEN:
            raise ValueError(f"{len(compiled)} patterns: a shape's mask holds at most 62")
        self._anchors = [c.anchor_regex.search for c in compiled]

    def __missing__(self, shape: bytes) -> int:
        if len(self) >= _SHAPE_CACHE_SIZE:
            self.clear()
        mask = sum(1 << i for i, search in enumerate(self._anchors) if search(shape))
        if shape[:-1].isalnum():
            mask |= _ONE_TOKEN
        self[shape] = mask
        return mask


def _context_word(compiled: _Compiled, text: str, begin: int, end: int) -> str | None:
    """The first context word of the pattern's type in ``text[begin:end]``, if any.

    Searched between the two offsets, so the word edges look at the characters around them.
    """
    match = compiled.context.search(text, begin, end)
    return None if match is None else match.group(1)


_GROUP = re.Match.group
# A match whose group 1 is None, read for a window without a context word, so that the
# words of all windows come from one ``map`` over ``Match.group``.
_NO_WORD = re.compile("(x)?").match("")
_OR_NO_WORD = {None: _NO_WORD}.get  # (found, found): the match, or _NO_WORD for None


def _locators(anchors: Iterable[str]) -> tuple[tuple[re.Pattern[bytes], bool], ...]:
    """Regexes finding ``anchors`` and the rest of a cluster (``_CLUSTER``), one per first
    character, each with whether it reads the classes with token digits marked
    (``_mark_token_digits``).

    One regex per first character, because Python's engine skips ahead to a literal first
    character in a tight loop but tests a set of them one call per character (a third of the
    locating time with one regex for all). Within a regex, each digit of the text is tried
    against one alternative (``0(?:...)``) rather than against every anchor that starts
    with a digit, and the token-start check (``ANCHOR_TOKEN_START``) common to the
    alternatives is made once: most digits fail there. Class characters that every
    alternative continues with go before that check, which then looks past them: the engine
    skips ahead to the whole literal (``AA00`` for IBANs) and tries far fewer positions.

    Digits need more: the literal ``000`` occurs at every digit of a long number, and each
    occurrence past the first fails the check only after a call into the engine (84,000
    times per MB of the labelled lines against 21,000 token starts). So the digit anchors
    run over a view in which a digit that starts a token is ``1`` (``_mark_token_digits``):
    they look for ``1`` and the shared digits, with no check, and read every other digit
    as ``[01]`` (``_with_token_digits``). Only where the digit anchors share digits after
    the first (the 5 shared types): with none to skip to (all 10 types), reading ``[01]``
    instead of ``0`` in their long digit runs cost more than the marking saved.
    """
    groups: dict[str, list[str]] = {}
    for anchor in anchors:
        for alternative in _top_level_alternatives(anchor):
            if alternative.startswith("["):
                firsts, rest = alternative[1:].split("]", 1)
            else:
                width = 2 if alternative.startswith("\\") else 1
                firsts, rest = [alternative[:width]], alternative[width:]
            for first in firsts:
                group = groups.setdefault(first, [])
                if rest not in group:
                    group.append(rest)
    locators = []
    cluster = _CLUSTER.pattern.decode("ascii")
    for first, rests in groups.items():
        head = re.escape(first) if len(first) == 1 else first
        marked = False
        if all(rest.startswith(ANCHOR_TOKEN_START) for rest in rests):
            rests = [rest[len(ANCHOR_TOKEN_START) :] for rest in rests]
            shared = _shared_literal(rests)
            rests = [rest[len(shared) :] for rest in rests]
            if first == "0" and shared:
                # The shared characters follow a class character, so none of them is marked.
                marked = True
                head = "1" + shared
                rests = [_with_token_digits(rest) for rest in rests]
            else:
                head += shared + _token_start(len(shared))
        tail = _with_token_digits(cluster) if marked else cluster
        regex = f"{head}(?:{'|'.join(rests)}){tail}"
        locators.append((re.compile(regex.encode("ascii")), marked))
    return tuple(locators)


def _close_clusters(classes: bytes) -> bytes:
    """``classes`` with each space that joins no two digits or capitals written ``#``.

    Clusters are then the runs of characters other than ``#``: the start of the one that
    ends at a position is one ``rfind`` away. A few vector operations over the chunk
    (numpy); same length, so offsets carry over.
    """
    view = np.frombuffer(classes, np.uint8)
    joins = (view == _DIGIT) | (view == _CAPITAL)
    apart = view == _SPACE
    apart[1:-1] &= ~(joins[:-2] & joins[2:])
    return (view + apart.view(np.uint8) * np.uint8(_OUTSIDE - _SPACE)).tobytes()


def _mark_token_digits(classes: bytes) -> bytes:
    """``classes`` with each digit that starts a token (no digit or letter before) as ``1``.

    A few vector operations over the chunk (numpy), a fraction of what one regex pass
    costs; same length, so offsets carry over.
    """
    view = np.frombuffer(classes, np.uint8)
    word = (view == _DIGIT) | (view == _CAPITAL) | (view == _SMALL)
    starts = view == _DIGIT
    starts[1:] &= ~word[:-1]
    return (view + starts.view(np.uint8)).tobytes()


def _with_token_digits(regex: str) -> str:
    """``regex`` over classes rewritten for ``_mark_token_digits``: each digit class ``0``
    outside counts (``{10,16}``) also reads ``1``.
    """
    out, i, in_class, in_count = [], 0, False, False
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_count:
            in_count = char != "}"
        elif in_class:
            in_class = char != "]"
            char = "01" if char == "0" else char
        elif char == "[":
            in_class = True
        elif char == "{":
            in_count = True
        elif char == "0":
            char = "[01]"
        out.append(char)
        i += 1
    return "".join(out)


def _token_start(skipped: int) -> str:
    """``ANCHOR_TOKEN_START`` checked ``skipped`` characters further on."""
    return f"(?<![0Aa].{'.' * skipped})"


def _shared_literal(regexes: list[str]) -> str:
    """The class characters (``0Aa``) that all ``regexes`` start with, none quantified."""
    shared = ""
    for chars in zip(*regexes, strict=False):
        if chars[0] not in "0Aa" or any(char != chars[0] for char in chars):
            break
        shared += chars[0]
    # A character followed by a quantifier, in any of them, is not a literal.
    while shared and any(
        regex[len(shared) : len(shared) + 1] in ("{", "*", "+", "?") for regex in regexes
    ):
        shared = shared[:-1]
    return shared


def _top_level_alternatives(regex: str) -> list[str]:
    """``regex`` split at the ``|`` outside groups and classes (escapes are kept whole)."""
    parts, depth, in_class, start, i = [], 0, False, 0, 0
    while i < len(regex):
        ch = regex[i]
        if ch == "\\":
            i += 1
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0:
            parts.append(regex[start:i])
            start = i + 1
        i += 1
    parts.append(regex[start:])
    return parts


def _ascii_view(text: str) -> tuple[str, bytes]:
    """``text`` with full-width digits as ASCII and any other non-ASCII character as ``?``.

    As a string and as bytes. Same length, so offsets carry over; no pattern matches ``?``.
    """
    if text.isascii():
        return text, text.encode("ascii")
    if any(digit in text for digit in _FULLWIDTH_DIGIT_CHARS):
        text = text.translate(_FULLWIDTH_DIGITS)
    raw = text.encode("ascii", "replace")
    return raw.decode("ascii"), raw
