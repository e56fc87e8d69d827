"""Offline, deterministic, extractive summariser for Digest.

Pipeline: detect_format -> extract_prose -> split_sentences ->
chunk_sentences -> rank_chunk (per chunk) -> combine. Every value passed
between steps is plain JSON, and every function is a top-level function so
that it can run in a process pool.
"""

from __future__ import annotations

from .base import Summarizer, TextRankSummarizer
from .chunks import chunk_sentences
from .detect import Format, detect_format
from .items import Candidate, SentenceItem
from .markup import extract_prose, no_prose_reason
from .pipeline import summarize
from .ranking import combine, rank_chunk
from .sentences import split_sentences

__all__ = [
    "Candidate",
    "Format",
    "SentenceItem",
    "Summarizer",
    "TextRankSummarizer",
    "chunk_sentences",
    "combine",
    "detect_format",
    "extract_prose",
    "no_prose_reason",
    "rank_chunk",
    "split_sentences",
    "summarize",
]
