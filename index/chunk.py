"""Split field text into chunks bounded by the embedding model's tokenizer, with overlap.

Pure Python over plain strings: the tokenizer is passed in as token character spans, so the
rules here are tested in milliseconds with a toy tokenizer and checked against the real one.

Sentences end at Chinese full-width terminators (。！？；), their Western counterparts (!?;),
a full stop followed by white space, and line breaks; closing quotes and brackets stay with
their sentence. Sentences are packed greedily into chunks of at most ``max_tokens`` model
tokens; the next chunk starts with the previous chunk's last sentences up to
``overlap_tokens``, so a fact cut at a boundary is whole in one of the two chunks. A sentence
longer than a chunk is cut into windows at token boundaries, overlapping by the same amount.

Token counts come from one tokenisation of the whole text (character spans of its tokens), so
a chunk's count is exact for the text it covers instead of a sum of re-tokenised pieces.
"""

# Full-width punctuation is the subject of this module, not a typo.
# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# A terminator run, then closing quotes/brackets, then the white space before the next sentence.
# Full-width terminators end a sentence even without a following space (Chinese has none).
_SENTENCE_END = re.compile(
    r"""(?:[。！？；!?;]+|\.(?=\s)|\n)[”’"'」』）)\]】]*\s*""",
)

Span = tuple[int, int]


class Tokenizer(Protocol):
    """What chunking needs from a tokenizer: each text's token character spans, in order,
    without special tokens ([CLS], [SEP]); spans may cover characters the model maps to one
    unknown token."""

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]: ...


@dataclass(frozen=True)
class TextChunk:
    """One chunk of a field's text: ``text == source[start:end]``, ``tokens`` model tokens."""

    index: int
    text: str
    start: int
    end: int
    tokens: int


def sentence_spans(text: str) -> list[Span]:
    """Character spans of the sentences in ``text``, stripped of surrounding white space."""
    spans: list[Span] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(text)))
    stripped = []
    for begin, end in spans:
        piece = text[begin:end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece.rstrip())
        if trail > lead:
            stripped.append((begin + lead, begin + trail))
    return stripped


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a window of an over-long one) with its token count."""

    start: int
    end: int
    tokens: int


def _units(text: str, tokens: Sequence[Span], max_tokens: int, overlap: int) -> list[_Unit]:
    starts = [span[0] for span in tokens]
    units: list[_Unit] = []
    for begin, end in sentence_spans(text):
        first = bisect.bisect_left(starts, begin)
        last = bisect.bisect_left(starts, end)
        count = last - first
        if count <= max_tokens:
            units.append(_Unit(begin, end, count))
            continue
        step = max_tokens - overlap
        for window in range(first, last, step):
            stop = min(window + max_tokens, last)
            w_begin = begin if window == first else tokens[window][0]
            w_end = end if stop == last else tokens[stop - 1][1]
            units.append(_Unit(w_begin, w_end, stop - window))
            if stop == last:
                break
    return units


def chunk_text(
    text: str, tokens: Sequence[Span], max_tokens: int, overlap_tokens: int
) -> list[TextChunk]:
    """Chunks of ``text`` given its token spans (see the module docstring for the rules).

    ``overlap_tokens`` is capped at half of ``max_tokens`` so every chunk moves forward.
    Empty or white-space-only text gives no chunks.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    overlap = min(overlap_tokens, max_tokens // 2)
    chunks: list[TextChunk] = []
    current: list[_Unit] = []

    def emit() -> None:
        begin, end = current[0].start, current[-1].end
        count = sum(unit.tokens for unit in current)
        chunks.append(TextChunk(len(chunks), text[begin:end], begin, end, count))

    for unit in _units(text, tokens, max_tokens, overlap):
        if current and sum(u.tokens for u in current) + unit.tokens > max_tokens:
            emit()
            tail: list[_Unit] = []
            for previous in reversed(current):
                used = sum(u.tokens for u in tail) + previous.tokens
                if used > overlap or used + unit.tokens > max_tokens:
                    break
                tail.insert(0, previous)
            current = tail
        current.append(unit)
    if current:
        emit()
    return chunks


def chunk_texts(
    texts: Sequence[str], tokenizer: Tokenizer, max_tokens: int, overlap_tokens: int
) -> list[list[TextChunk]]:
    """``chunk_text`` for many texts with one batched tokenizer call."""
    spans = tokenizer.token_spans(list(texts))
    return [
        chunk_text(text, text_spans, max_tokens, overlap_tokens)
        for text, text_spans in zip(texts, spans, strict=True)
    ]


class RegexTokenizer:
    """A dependency-free stand-in: a token per Latin word, digit run, CJK character or symbol.

    Used by unit tests and by anything that must chunk without loading a model; the real
    bounds come from the model's own tokenizer (``index.embed``).
    """

    _TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")

    def token_spans(self, texts: Sequence[str]) -> list[list[Span]]:
        return [[m.span() for m in self._TOKEN.finditer(text)] for text in texts]
