"""Turn a document into its prose paragraphs, dropping non-prose blocks."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ._text import collapse_whitespace
from .detect import FORMATS, header_block_length
from .rst import rst_paragraphs, rst_skips_blocks

_YAML_FRONT_MATTER = re.compile(
    r"\A---[ \t]*\n.*?\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S
)


def extract_prose(text: str, fmt: str) -> list[str]:
    """Return the prose paragraphs of *text* in order, whitespace collapsed.

    Headings, code, tables, directives, comments, link targets, HTML and a
    leading RFC 822 header block (PEP metadata) are left out.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    # Metadata such as "PEP: 8 / Title: ..." is not part of the body in any
    # format; docutils would otherwise read it as an ordinary paragraph.
    body = text[header_block_length(text) :]
    if fmt == "rst":
        return rst_paragraphs(body)
    if fmt == "markdown":
        return _markdown_paragraphs(_YAML_FRONT_MATTER.sub("", body, count=1))
    return _text_paragraphs(body)


# The reason a document with no sentence left after its non-prose blocks were
# skipped is refused; when nothing was skipped, no_prose_reason says so.
SKIPPED_EVERYTHING = (
    "the document has no prose to summarise: headings, code blocks, tables "
    "and directives are skipped, and nothing else was left"
)
_LETTER = re.compile(r"[^\W\d_]")


def no_prose_reason(text: str, fmt: str) -> str:
    """Why *text* gave no sentence, in words that are true of it.

    Called once extract_prose and split_sentences found nothing. When the
    document held blocks that are skipped (headings, code, tables, directives,
    metadata), those are the reason; otherwise it simply has no sentence,
    such as "x" or a few words without a full stop.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    header = header_block_length(text)
    body = text[header:]
    if header or _skips_blocks(body, fmt):
        return SKIPPED_EVERYTHING
    words = sum(1 for word in text.split() if _LETTER.search(word))
    return (
        f"no sentence found: the document has {words} "
        f"word{'' if words == 1 else 's'} and no complete sentence; send prose "
        "of at least one sentence"
    )


# Markdown tokens that open a block extract_prose leaves out.
_MARKDOWN_SKIPPED = frozenset(
    {"heading_open", "fence", "code_block", "table_open", "html_block"}
)


def _skips_blocks(body: str, fmt: str) -> bool:
    if fmt == "rst":
        return rst_skips_blocks(body)
    if fmt == "markdown":
        if _YAML_FRONT_MATTER.match(body):
            return True
        parser = MarkdownIt("commonmark", {"html": True}).enable("table")
        return any(token.type in _MARKDOWN_SKIPPED for token in parser.parse(body))
    # Plain text: a lone short line is taken for a heading, but a document of
    # nothing else has no heading to speak of, only too few words.
    return any(
        _FENCE.match(line)
        or _UNDERLINE.match(line)
        or _TABLE_ROW.search(line)
        or (line.startswith("    ") and line.strip())
        for line in body.expandtabs(8).splitlines()
    )


def _inline_text(inline: Token) -> str:
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        # Link/emphasis open/close tags carry no text of their own; their
        # words arrive as sibling text tokens. Images and inline HTML are
        # dropped outright.
    return "".join(parts)


def _markdown_paragraphs(text: str) -> list[str]:
    # CommonMark plus GFM tables, so "| a | b |" rows become a table token
    # instead of a paragraph. Headings, fences, indented code and HTML blocks
    # never produce paragraph tokens, so they fall away by themselves.
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    tokens = parser.parse(text)
    paragraphs: list[str] = []
    for index, token in enumerate(tokens[:-1]):
        if token.type != "paragraph_open":
            continue
        inline = tokens[index + 1]
        plain = collapse_whitespace(_inline_text(inline))
        if plain:
            paragraphs.append(plain)
    return paragraphs


_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
_UNDERLINE = re.compile(r"^[ \t]*([=\-~^*#+])\1{2,}[ \t]*$")
# A row of a drawn table ("| a | b |", "+---+---+") or of an aligned column
# layout: two or more gaps of three spaces between cells.
_TABLE_ROW = re.compile(r"^[ \t]*[|+].*[|+][ \t]*$|\S {3,}\S.* {3,}\S")
# Closing marks of Latin and CJK scripts, and closing quotes.
_SENTENCE_END = re.compile(r"[.!?:;,\"')\]\u3002\uff01\uff1f\u201d\u2019\u00bb]$")


# Words in the longest line still taken for a heading in plain text.
_HEADING_MAX_WORDS = 8


def _looks_like_heading(line: str) -> bool:
    stripped = line.strip()
    if _SENTENCE_END.search(stripped):
        return False
    return len(stripped.split()) <= _HEADING_MAX_WORDS


def _text_paragraphs(text: str) -> list[str]:
    paragraphs: list[str] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        # A lone short line without closing punctuation is a heading; a long
        # one is a paragraph that happens to be written on one line.
        if len(lines) == 1 and _looks_like_heading(lines[0]):
            lines.clear()
        plain = collapse_whitespace(" ".join(lines))
        if plain:
            paragraphs.append(plain)
        lines.clear()

    for line in text.expandtabs(8).splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            flush()
            continue
        if in_fence:
            continue
        if not line.strip():
            flush()
        elif _UNDERLINE.match(line):
            if lines:
                lines.pop()  # the line above the underline is a heading
            flush()
        elif line.startswith("    ") or _TABLE_ROW.search(line):
            flush()  # indented code or a table row ends the paragraph
        else:
            lines.append(line)
    flush()
    return paragraphs
