"""Rank sentences within a chunk and across all chunk candidates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .items import Candidate, SentenceItem, coerce_item
from .textrank import textrank

# A candidate this similar (TF-IDF cosine) to one already chosen says the
# same thing again; TextRank alone favours such clusters of near-duplicates,
# since they recommend each other.
REDUNDANCY_THRESHOLD = 0.3
# Rounded scores survive a JSON round trip unchanged and make ties (broken
# by position) independent of last-bit floating point noise.
SCORE_DECIMALS = 6


def _best(items: list[SentenceItem], k: int) -> list[Candidate]:
    """Score *items* and return the *k* best distinct sentences, best first."""
    if k <= 0 or not items:
        return []
    # Ordering by position first makes the result independent of the order
    # in which steps delivered their items.
    items = sorted(items, key=lambda item: item["position"])
    scores, similarity = textrank([item["text"] for item in items])
    order = sorted(
        range(len(items)),
        key=lambda index: (-round(scores[index], SCORE_DECIMALS), index),
    )
    chosen: list[int] = []
    skipped: list[int] = []
    seen: set[str] = set()
    for index in order:
        text = items[index]["text"]
        if text in seen:
            continue
        seen.add(text)
        if any(similarity[index, other] >= REDUNDANCY_THRESHOLD for other in chosen):
            skipped.append(index)
            continue
        chosen.append(index)
        if len(chosen) == k:
            break
    # Too few distinct ideas for k: fill up with the best redundant ones
    # rather than return a short summary.
    chosen.extend(skipped[: k - len(chosen)])
    rank_of = {index: rank for rank, index in enumerate(order)}
    chosen.sort(key=rank_of.__getitem__)
    return [
        Candidate(
            position=items[index]["position"],
            text=items[index]["text"],
            score=round(scores[index], SCORE_DECIMALS),
        )
        for index in chosen
    ]


def _unique_positions(raw: Iterable[Mapping[str, Any]]) -> list[SentenceItem]:
    by_position: dict[int, SentenceItem] = {}
    for record in raw:
        item = coerce_item(record)
        by_position.setdefault(item["position"], item)
    return list(by_position.values())


def rank_chunk(chunk: list[SentenceItem], k: int) -> list[Candidate]:
    """Return the *k* best sentences of one chunk, best first, with scores."""
    return _best(_unique_positions(chunk), k)


def combine(candidates: list[Candidate], k: int) -> list[str]:
    """Pick the final summary from every chunk's candidates.

    Chunk scores are relative to their own chunk, so the union is ranked
    again as one graph before choosing. The result is in document order.
    """
    best = _best(_unique_positions(candidates), k)
    return [item["text"] for item in sorted(best, key=lambda item: item["position"])]
