"""Few-shot exemplars per label by maximal marginal relevance over embeddings.

Random exemplars repeat the commonest phrasing of a label; the nearest ones to the centroid
even more so. MMR trades closeness to the label centroid (the exemplar is typical of the
label) against closeness to exemplars already chosen (it adds something new), so a prompt
shows the label's range, which is what the generator is asked to cover.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from synth.embed import unit_rows


def mmr(
    vectors: np.ndarray,
    k: int,
    diversity_lambda: float,
    query: np.ndarray | None = None,
) -> list[int]:
    """Indices of ``k`` rows of unit ``vectors`` chosen by MMR against ``query``.

    ``query`` defaults to the rows' centroid. Each step takes the row maximising
    ``lambda * sim(row, query) - (1 - lambda) * max sim(row, chosen)``. Deterministic: ties go
    to the lower index.
    """
    count = len(vectors)
    if count == 0 or k <= 0:
        return []
    centre = vectors.mean(axis=0) if query is None else query
    centre = unit_rows(centre.reshape(1, -1))[0]
    relevance = vectors @ centre
    chosen: list[int] = [int(np.argmax(relevance))]
    nearest_chosen = vectors @ vectors[chosen[0]]
    while len(chosen) < min(k, count):
        score = diversity_lambda * relevance - (1 - diversity_lambda) * nearest_chosen
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        nearest_chosen = np.maximum(nearest_chosen, vectors @ vectors[best])
    return chosen


def centroids(vectors: np.ndarray, labels: Sequence[str]) -> dict[str, np.ndarray]:
    """The unit mean vector of each label."""
    array = np.asarray(labels)
    return {
        label: unit_rows(vectors[array == label].mean(axis=0, keepdims=True))[0]
        for label in sorted(set(labels))
    }


def nearest_label(vectors: np.ndarray, label_centroids: dict[str, np.ndarray]) -> list[str]:
    """For each row, the label whose centroid is most similar."""
    names = list(label_centroids)
    matrix = np.stack([label_centroids[n] for n in names])
    return [names[i] for i in np.argmax(vectors @ matrix.T, axis=1)]


def label_margin(
    vectors: np.ndarray, label: str, label_centroids: dict[str, np.ndarray]
) -> np.ndarray:
    """Similarity to ``label``'s centroid minus the best similarity to any other centroid
    (positive: the rows sit nearer their own label)."""
    own = vectors @ label_centroids[label]
    others = [c for name, c in label_centroids.items() if name != label]
    if not others:
        return own
    return own - np.max(vectors @ np.stack(others).T, axis=1)
