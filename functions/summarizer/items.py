"""JSON-shaped records that cross step boundaries.

TypedDicts are plain ``dict`` objects at run time, so they serialise to JSON
without adapters and come back unchanged from a step's stored result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict


class SentenceItem(TypedDict):
    """A sentence and its index in the whole document's sentence list."""

    position: int
    text: str


class Candidate(TypedDict):
    """A ranked sentence; ``score`` is rounded so JSON round-trips are exact."""

    position: int
    text: str
    score: float


def coerce_item(raw: Mapping[str, Any]) -> SentenceItem:
    """Validate one record read back from JSON (a step boundary)."""
    position = raw["position"]
    text = raw["text"]
    # bool is an int subclass; a True position would be a caller bug.
    if isinstance(position, bool) or not isinstance(position, int):
        raise TypeError(f"position must be an int, got {position!r}")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return {"position": position, "text": text}
