"""Split prose paragraphs into sentences with pysbd."""

from __future__ import annotations

import re

import pysbd

from ._text import collapse_whitespace

# What counts as a real sentence: at least MIN_WORDS whitespace-separated
# words that contain a letter, and letters make up at least half of the
# non-space characters. This drops list fragments ("Optional:", "lowercase"),
# bare numbers and stray code (``x = f(a, b)[0]``) while keeping ordinary
# prose that mentions identifiers.
MIN_WORDS = 4
_MIN_LETTER_SHARE = 0.5
# pysbd's regexes get slow on very long inputs; a paragraph is normally far
# shorter than this, but a wall of text without blank lines is cut at
# whitespace first so splitting stays roughly linear.
_MAX_PIECE = 5000
_LETTER = re.compile(r"[^\W\d_]")
# A terminator with more text after it. Paragraphs without one hold a single
# sentence (pysbd only ends sentences at terminators once whitespace is
# collapsed), so they skip pysbd, whose fixed cost per call dominates on
# the many short list items and one-line paragraphs of technical documents.
_INNER_TERMINATOR = re.compile(r"[.!?\u2026](?![.!?\u2026\"')\]]*$)")


def _is_sentence(sentence: str) -> bool:
    words = [word for word in sentence.split(" ") if _LETTER.search(word)]
    if len(words) < MIN_WORDS:
        return False
    visible = len(sentence) - sentence.count(" ")
    letters = len(_LETTER.findall(sentence))
    return letters >= _MIN_LETTER_SHARE * visible


def _pieces(paragraph: str) -> list[str]:
    if len(paragraph) <= _MAX_PIECE:
        return [paragraph]
    pieces: list[str] = []
    start = 0
    while len(paragraph) - start > _MAX_PIECE:
        # Prefer a cut after a full stop; fall back to any space.
        window = paragraph[start : start + _MAX_PIECE]
        cut = window.rfind(". ")
        cut = cut + 1 if cut > 0 else window.rfind(" ")
        if cut <= 0:
            cut = _MAX_PIECE
        pieces.append(paragraph[start : start + cut])
        start += cut
    pieces.append(paragraph[start:])
    return pieces


def split_sentences(paragraphs: list[str]) -> list[str]:
    """Return the real sentences of *paragraphs*, in order, single-spaced."""
    # A Segmenter keeps the text it last saw on itself, so each call builds
    # its own instead of sharing a module-level one between callers.
    segmenter = pysbd.Segmenter(language="en", clean=False)
    candidates: list[str] = []
    for paragraph in paragraphs:
        for piece in _pieces(collapse_whitespace(paragraph)):
            if _INNER_TERMINATOR.search(piece):
                found: list[str] = segmenter.segment(piece)
            else:
                found = [piece]
            candidates += [collapse_whitespace(raw) for raw in found]
    sentences = [sentence for sentence in candidates if _is_sentence(sentence)]
    if sentences:
        return sentences
    # A short note or a text in a script written without spaces between
    # words has no sentence that passes the rule above; rather than refuse
    # it, keep every piece that holds a letter.
    return [sentence for sentence in candidates if _LETTER.search(sentence)]
