"""Guess a document's markup language from cheap line-level signals."""

from __future__ import annotations

import re
from typing import Literal

Format = Literal["text", "markdown", "rst"]
FORMATS: tuple[Format, ...] = ("text", "markdown", "rst")

# An RFC 822-style header block ("PEP: 8\nTitle: ...\n  continuation") at the
# very top of a document, ended by a blank line or the end of the text.
_HEADER_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*:(?:[ \t]|$)")


def header_block_length(text: str) -> int:
    """Return how many leading characters form an RFC 822 header block.

    Two fields at least are required so that a paragraph which merely opens
    with "Note: ..." is not mistaken for metadata. Returns 0 when absent.
    """
    offset = 0
    fields = 0
    for line in text.splitlines(keepends=True):
        if not line.strip():
            break
        if _HEADER_FIELD.match(line):
            fields += 1
        elif not (fields and line[:1] in " \t"):
            return 0  # neither a field nor a field's continuation line
        offset += len(line)
    return offset if fields >= 2 else 0


# Weighted signals; each counts at most _CAP times so that one frequent,
# weak signal (say many underlines) cannot outvote a decisive one.
_CAP = 3
_RST_SIGNALS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^\.\. [A-Za-z][\w:-]*::", re.M), 3),  # directive
    (re.compile(r"^\.\. _[^:\n]+:", re.M), 3),  # link target
    (re.compile(r"^\.\. \[[^\]\n]+\]", re.M), 3),  # footnote / citation
    (re.compile(r"::[ \t]*$", re.M), 2),  # literal block marker
    (re.compile(r":[A-Za-z][\w:.+-]*:`[^`\n]+`"), 2),  # interpreted text role
    (re.compile(r"`[^`\n]+`__?(?!\w)"), 2),  # hyperlink reference
)
_MD_SIGNALS: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^#{1,6}[ \t]+\S", re.M), 3),  # ATX heading
    (re.compile(r"^[ \t]{0,3}(?:```|~~~)", re.M), 3),  # fenced code
    (re.compile(r"!?\[[^\]\n]+\]\([^)\n]+\)"), 3),  # inline link / image
    (re.compile(r"^\|?[ \t]*:?-{3,}:?[ \t]*\|", re.M), 3),  # table separator
    (re.compile(r"^>[ \t]", re.M), 1),  # block quote
)
# A section title underline: a run of one punctuation character at least as
# long as the non-blank line above it. Markdown's setext headings look the
# same, so it only tips the balance towards rst.
_UNDERLINE = re.compile(r"^([^\s\n].*)\n([=\-~^\"'`#*+:.])\2{2,}[ \t]*$", re.M)


def _score(text: str, signals: tuple[tuple[re.Pattern[str], int], ...]) -> int:
    total = 0
    for pattern, weight in signals:
        hits = 0
        for _ in pattern.finditer(text):
            hits += 1
            if hits == _CAP:
                break
        total += weight * hits
    return total


def _underline_hits(text: str) -> int:
    hits = 0
    for match in _UNDERLINE.finditer(text):
        title, line = match.group(1), match.group(0).split("\n")[1]
        if len(line.rstrip()) >= len(title.rstrip()):
            hits += 1
            if hits == _CAP:
                break
    return hits


def detect_format(text: str) -> Format:
    """Return "rst", "markdown" or "text" for *text*.

    Ties between non-zero scores go to markdown: markdown-it accepts any
    input without complaint, while rst parsing of a markdown document turns
    its links and code spans into markup errors.
    """
    rst = _score(text, _RST_SIGNALS) + _underline_hits(text)
    if header_block_length(text):
        rst += 3
    markdown = _score(text, _MD_SIGNALS)
    if rst == 0 and markdown == 0:
        return "text"
    return "rst" if rst > markdown else "markdown"
