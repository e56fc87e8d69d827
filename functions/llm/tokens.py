"""Counting tokens, and cutting a document into chunks a model can read.

The count is an estimate, not a tokenizer. tiktoken, the well-kept choice,
downloads its vocabulary files on first use, which a server with no outbound
network (or a test machine) cannot do, and an OpenAI-compatible endpoint may
serve a model with another vocabulary anyway. The estimate errs high on
purpose: English words count one token per four letters (real BPE vocabularies
hold most common words whole), every punctuation mark counts one, and each
non-ASCII letter counts one (CJK text runs at about one token per character).
A chunk sized by it is a little smaller than it could be, never too big.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from functions.summarizer.items import SentenceItem

_PIECES = re.compile(r"\w+|[^\w\s]")
# Tokens the instructions and the chat framing take, on top of the text.
PROMPT_OVERHEAD_TOKENS = 300
# A partial summary gets at least this many tokens, however many chunks.
MIN_PARTIAL_TOKENS = 64
# Share of a chunk repeated at the start of the next one, so that a point
# made across the cut is seen whole by one of the two map steps.
OVERLAP_SHARE = 0.1


def estimate_tokens(text: str) -> int:
    """An upper-leaning estimate of the tokens `text` takes (see above)."""
    total = 0
    for piece in _PIECES.findall(text):
        if piece.isascii():
            total += max(1, math.ceil(len(piece) / 4))
        else:
            total += len(piece)
    return total


@dataclass(frozen=True)
class Budget:
    """How a model's context window is shared out, all in tokens."""

    context_tokens: int
    max_output_tokens: int

    @property
    def input_tokens(self) -> int:
        """Room for text in one request, after instructions and the answer."""
        room = self.context_tokens - PROMPT_OVERHEAD_TOKENS - self.max_output_tokens
        return max(room, 256)

    @property
    def chunk_tokens(self) -> int:
        return self.input_tokens

    @property
    def overlap_tokens(self) -> int:
        return int(self.chunk_tokens * OVERLAP_SHARE)

    def partial_tokens(self, chunks: int) -> int:
        """Answer budget of one map step, so that all partial summaries fit
        in the one request of the reduce step."""
        share = self.input_tokens // max(chunks, 1)
        return max(MIN_PARTIAL_TOKENS, min(self.max_output_tokens, share))


def split_long(text: str, max_tokens: int) -> list[str]:
    """`text` as pieces of at most `max_tokens`, cut between words."""
    if estimate_tokens(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    words: list[str] = []
    size = 0
    for word in text.split():
        cost = estimate_tokens(word)
        if words and size + cost > max_tokens:
            pieces.append(" ".join(words))
            words, size = [], 0
        words.append(word)
        size += cost
    if words:
        pieces.append(" ".join(words))
    return pieces


def chunk_by_tokens(
    sentences: list[str], max_tokens: int, overlap_tokens: int
) -> list[list[SentenceItem]]:
    """Consecutive sentences in chunks of at most `max_tokens`, each chunk
    starting with the last sentences (up to `overlap_tokens`) of the one
    before. A sentence too long for a chunk is cut between words; its
    pieces keep its position."""
    if max_tokens <= 0 or overlap_tokens < 0 or overlap_tokens >= max_tokens:
        raise ValueError("need 0 <= overlap_tokens < max_tokens")
    chunks: list[list[SentenceItem]] = []
    current: list[tuple[SentenceItem, int]] = []
    size = 0
    for position, sentence in enumerate(sentences):
        for piece in split_long(sentence, max_tokens):
            cost = estimate_tokens(piece)
            if current and size + cost > max_tokens:
                chunks.append([item for item, _ in current])
                current = _tail(current, overlap_tokens, room=max_tokens - cost)
                size = sum(tokens for _, tokens in current)
            current.append(({"position": position, "text": piece}, cost))
            size += cost
    if current:
        chunks.append([item for item, _ in current])
    return chunks


def _tail(
    items: list[tuple[SentenceItem, int]], overlap_tokens: int, room: int
) -> list[tuple[SentenceItem, int]]:
    """The last items of a chunk worth at most `overlap_tokens`, and no more
    than `room` so that the next sentence still fits."""
    limit = min(overlap_tokens, room)
    kept: list[tuple[SentenceItem, int]] = []
    size = 0
    for item, tokens in reversed(items):
        if size + tokens > limit:
            break
        kept.insert(0, (item, tokens))
        size += tokens
    return kept


def trim_to_tokens(text: str, max_tokens: int) -> str:
    """`text` cut between words to at most `max_tokens`."""
    return split_long(text, max_tokens)[0] if text.strip() else text
