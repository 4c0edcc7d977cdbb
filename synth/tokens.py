"""Word tokens, n-grams and clauses for mixed Chinese and Latin text.

Han characters count as one token each (Chinese has no spaces, and a character is the unit
people copy); runs of letters and digits are one token. Used by the memorisation guard
(shared n-gram runs), the diversity report (distinct n-grams) and the substitute backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import regex

_TOKEN = regex.compile(r"\p{Han}|[^\W\p{Han}_]+(?:['\u2019][^\W\p{Han}_]+)?")
# Clause ends: , ; . ! ? : and their full-width forms.
_PUNCT = r",;.!?:\uff0c\uff1b\u3002\uff01\uff1f\uff1a"
# The delimiter stays with the clause before it.
_CLAUSE = regex.compile(rf"[^{_PUNCT}]+[{_PUNCT}]*")
# Sentence ends: . ! ? and their full-width forms.
SENTENCE_END = ".!?\u3002\uff01\uff1f"
HAN = regex.compile(r"\p{Han}")


def tokens(text: str) -> list[str]:
    """Lower-cased tokens of ``text``."""
    return [t.lower() for t in _TOKEN.findall(text)]


def ngrams(items: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(items[i : i + n]) for i in range(len(items) - n + 1)}


def clauses(text: str) -> list[str]:
    """``text`` cut after clause punctuation; joining the parts gives the text back."""
    return [m.group(0) for m in _CLAUSE.finditer(text) if m.group(0).strip()]


def distinct_ngrams(texts: Iterable[str], n: int) -> float:
    """Distinct-n: unique n-grams over all n-grams (0 when there are none)."""
    total = 0
    seen: set[tuple[str, ...]] = set()
    for text in texts:
        grams = tokens(text)
        count = max(0, len(grams) - n + 1)
        total += count
        seen.update(tuple(grams[i : i + n]) for i in range(count))
    return len(seen) / total if total else 0.0


class NgramIndex:
    """Every n-gram of a set of texts, to ask whether a new text shares a run of n tokens."""

    def __init__(self, texts: Iterable[str], n: int):
        self.n = n
        self._grams: set[tuple[str, ...]] = set()
        for text in texts:
            self._grams |= ngrams(tokens(text), n)

    def shares_run(self, text: str) -> bool:
        return not self._grams.isdisjoint(ngrams(tokens(text), self.n))
