"""Exemplar choice (MMR) and the token helpers: pure Python and numpy."""

# Curly apostrophes and full-width punctuation are the inputs under test.
# ruff: noqa: RUF001

from __future__ import annotations

import numpy as np

from synth.embed import unit_rows
from synth.exemplars import centroids, label_margin, mmr, nearest_label
from synth.tokens import NgramIndex, clauses, distinct_ngrams, tokens


def test_mmr_prefers_spread_over_near_duplicates() -> None:
    # Three near-identical rows around the centre and two distinct ones.
    vectors = unit_rows(
        np.array([[1, 0.1, 0], [1, 0.11, 0], [1, 0.09, 0], [0.6, 0.8, 0], [0.6, 0, 0.8]])
    )
    typical = mmr(vectors, 3, diversity_lambda=1.0)
    spread = mmr(vectors, 3, diversity_lambda=0.5)
    assert len(set(typical) & {0, 1, 2}) >= 2
    assert set(spread) >= {3, 4} and len(set(spread) & {0, 1, 2}) == 1
    assert mmr(vectors, 3, 0.5) == spread  # deterministic
    assert len(mmr(vectors, 10, 0.5)) == 5 and mmr(vectors[:0], 3, 0.5) == []


def test_centroids_nearest_label_and_margin() -> None:
    vectors = unit_rows(np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]]))
    cents = centroids(vectors, ["a", "a", "b", "b"])
    assert nearest_label(vectors, cents) == ["a", "a", "b", "b"]
    margin = label_margin(vectors, "a", cents)
    assert margin[0] > 0 > margin[2]


def test_tokens_count_han_characters_and_words() -> None:
    assert tokens("退款 refund’s #12345, 谢谢!") == ["退", "款", "refund’s", "12345", "谢", "谢"]
    text = "Hi, my blender broke. Refund please! 谢谢。"
    assert "".join(clauses(text)) == text
    assert distinct_ngrams(["a b a b"], 1) == 0.5
    index = NgramIndex(["the blender arrived broken today"], 3)
    assert index.shares_run("My blender arrived broken!") and not index.shares_run("blender broken")
