"""TextRank: PageRank over a TF-IDF cosine-similarity graph of sentences."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

DAMPING = 0.85
_TOLERANCE = 1e-12
_MAX_ITERATIONS = 200


def _similarity(texts: Sequence[str]) -> NDArray[np.float64]:
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True)
    try:
        vectors = vectorizer.fit_transform(texts)
    except ValueError:
        # Empty vocabulary: every sentence is stop words only. No sentence
        # recommends another, so the graph has no edges.
        return np.zeros((len(texts), len(texts)))
    weights: NDArray[np.float64] = cosine_similarity(vectors)
    np.fill_diagonal(weights, 0.0)  # a sentence does not vote for itself
    return weights


def _pagerank(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    size = weights.shape[0]
    out_weight = weights.sum(axis=1, keepdims=True)
    # A sentence similar to nothing spreads its vote evenly (the usual fix
    # for dangling nodes), which keeps the transition matrix stochastic.
    transition = np.divide(
        weights,
        out_weight,
        out=np.full_like(weights, 1.0 / size),
        where=out_weight > 0,
    )
    rank = np.full(size, 1.0 / size)
    for _ in range(_MAX_ITERATIONS):
        updated = (1.0 - DAMPING) / size + DAMPING * (transition.T @ rank)
        converged = float(np.abs(updated - rank).sum()) < _TOLERANCE
        rank = updated
        if converged:
            break
    return rank


class Ranking(NamedTuple):
    """TextRank scores plus the similarity graph they were computed from."""

    scores: list[float]
    similarity: NDArray[np.float64]


def textrank(texts: Sequence[str]) -> Ranking:
    """Score *texts* with TextRank; the mean score is 1.0.

    Scaling by the number of sentences keeps scores in a readable range that
    does not shrink as chunks grow, which matters once they are rounded.
    """
    if len(texts) < 2:
        return Ranking([1.0] * len(texts), np.zeros((len(texts), len(texts))))
    similarity = _similarity(texts)
    rank = _pagerank(similarity) * len(texts)
    return Ranking([float(score) for score in rank], similarity)
