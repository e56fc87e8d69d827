"""Turn a document into its prose paragraphs, dropping non-prose blocks."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ._text import collapse_whitespace
from .detect import FORMATS, header_block_length
from .rst import rst_paragraphs

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
