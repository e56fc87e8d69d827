"""The interface a summariser backend offers to the pipeline.

The job steps only need two operations with JSON-shaped inputs and outputs.
TextRank implements them today; a language-model backend can implement the
same two methods (returning model-assigned scores) without any change to
splitting, chunking or the workflow.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .items import Candidate, SentenceItem
from .ranking import combine, rank_chunk


@runtime_checkable
class Summarizer(Protocol):
    """Ranks sentence candidates; must be deterministic and picklable."""

    name: str

    def rank_chunk(self, chunk: list[SentenceItem], k: int) -> list[Candidate]:
        """Return the k best sentences of one chunk, best first."""
        ...

    def combine(self, candidates: list[Candidate], k: int) -> list[str]:
        """Return the k best sentence texts of all candidates, in document order."""
        ...


class TextRankSummarizer:
    """The built-in, offline backend: TF-IDF TextRank."""

    name = "textrank"

    def rank_chunk(self, chunk: list[SentenceItem], k: int) -> list[Candidate]:
        return rank_chunk(chunk, k)

    def combine(self, candidates: list[Candidate], k: int) -> list[str]:
        return combine(candidates, k)
