"""Group consecutive sentences into chunks for the per-chunk ranking step."""

from __future__ import annotations

from .items import SentenceItem


def chunk_sentences(
    sentences: list[str], max_chars: int = 6000
) -> list[list[SentenceItem]]:
    """Split *sentences* into runs of at most *max_chars* characters.

    Each item keeps its position in the whole document, so later steps can
    restore document order. A sentence is never split; one longer than
    *max_chars* becomes a chunk of its own.
    """
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    chunks: list[list[SentenceItem]] = []
    current: list[SentenceItem] = []
    size = 0
    for position, text in enumerate(sentences):
        if current and size + len(text) > max_chars:
            chunks.append(current)
            current, size = [], 0
        current.append({"position": position, "text": text})
        size += len(text)
    if current:
        chunks.append(current)
    return chunks
