"""The whole summarisation pipeline in one call, as the steps run it."""

from __future__ import annotations

from .chunks import chunk_sentences
from .detect import detect_format
from .markup import extract_prose
from .ranking import combine, rank_chunk
from .sentences import split_sentences


def summarize(text: str, max_sentences: int = 5, fmt: str | None = None) -> list[str]:
    """Return up to *max_sentences* sentences of *text*, in document order."""
    if max_sentences <= 0:
        return []
    sentences = split_sentences(extract_prose(text, fmt or detect_format(text)))
    candidates = [
        candidate
        for chunk in chunk_sentences(sentences)
        for candidate in rank_chunk(chunk, max_sentences)
    ]
    return combine(candidates, max_sentences)
