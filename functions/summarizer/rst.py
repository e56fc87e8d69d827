"""Prose paragraphs of a reStructuredText document, via docutils."""

from __future__ import annotations

import re

import docutils.core
from docutils import nodes

from ._text import collapse_whitespace

# Keep docutils silent and sandboxed: no messages on stderr, never abort on
# markup errors, never read other files or pass raw HTML through.
_SETTINGS = {
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": False,
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "smart_quotes": False,
    "traceback": True,
    "input_encoding": "unicode",
}

# Paragraphs below any of these are code, tables, metadata, figures or
# boilerplate rather than the document's own prose.
_EXCLUDED_ANCESTORS: tuple[type[nodes.Node], ...] = (
    nodes.literal_block,
    nodes.doctest_block,
    nodes.math_block,
    nodes.table,
    nodes.footnote,
    nodes.citation,
    nodes.comment,
    nodes.substitution_definition,
    nodes.target,
    nodes.system_message,
    nodes.raw,
    nodes.figure,
    nodes.docinfo,
    nodes.field_list,
    nodes.option_list,
    nodes.title,
    nodes.subtitle,
    nodes.rubric,
)
# Whole sections that list sources or licence boilerplate, not content.
_SKIPPED = frozenset(
    {"references", "footnotes", "citations", "links", "copyright", "bibliography"}
)

# Roles outside docutils' core (Sphinx's :func:, :ref:, ...) become error
# nodes holding raw markup. Dropping the role prefix turns them into
# default-role title references whose text is the source text itself. Only
# :pep:`8` and :rfc:`822` with a bare number stay, because docutils renders
# them as the readable "PEP 8" / "RFC 822".
_ROLE_PREFIX = re.compile(
    r"(?<![\w`\\])"
    r"(?!(?i::(?:pep|rfc)(?:-reference)?:`\d+`))"
    r":[A-Za-z][\w.+-]*(?::[\w.+-]+)*:(?=`[^`])"
)
_ROLE_SUFFIX = re.compile(r"(?<=[^`\s]`):[A-Za-z][\w.+-]*:(?![\w`])")
# "title <target>" inside interpreted text keeps only the title.
_EXPLICIT_TARGET = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
# Footnote references are dropped together with the space before them, so
# "guide [2]_." reads "guide." rather than "guide 2." or "guide .".
_DROPPED = "\x00"
_FOOTNOTE_REFERENCE = re.compile(r"\[[^\]\s]+\]_")
_REFERENCE_SUFFIX = re.compile(r"(?<=`)__?$|(?<=\w)__?$")
_MARKUP_CHARS = re.compile(r"[`*|]")
_DROPPED_WITH_SPACE = re.compile(r"\s*\x00")


def _section_title(section: nodes.section) -> str:
    heading = section.children[0] if section.children else None
    if isinstance(heading, nodes.title):
        return str(heading.astext()).strip().lower()
    return ""


def _is_excluded(paragraph: nodes.paragraph) -> bool:
    node = paragraph.parent
    while node is not None:
        if isinstance(node, _EXCLUDED_ANCESTORS):
            return True
        if isinstance(node, nodes.topic) and "contents" in node["classes"]:
            return True
        if isinstance(node, nodes.section) and _section_title(node) in _SKIPPED:
            return True
        node = node.parent
    return False


def _interpreted_text(text: str) -> str:
    match = _EXPLICIT_TARGET.match(text)
    if match is None:
        return text
    return match.group(1) or match.group(2)


def _problematic_text(raw: str) -> str:
    """Reduce markup docutils could not resolve to the words it stands for.

    Duplicate or missing targets (common when documents are concatenated)
    and unknown substitutions leave their raw source text behind.
    """
    if _FOOTNOTE_REFERENCE.fullmatch(raw):
        return _DROPPED
    words = _MARKUP_CHARS.sub("", _REFERENCE_SUFFIX.sub("", raw))
    return _interpreted_text(words)


def _inline_text(node: nodes.Element) -> str:
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, nodes.Text):
            parts.append(child.astext())
        elif isinstance(child, nodes.footnote_reference | nodes.citation_reference):
            parts.append(_DROPPED)
        elif isinstance(
            child, nodes.target | nodes.system_message | nodes.raw | nodes.image
        ):
            continue
        elif isinstance(child, nodes.title_reference):
            parts.append(_interpreted_text(child.astext()))
        elif isinstance(child, nodes.problematic):
            parts.append(_problematic_text(child.astext()))
        elif isinstance(child, nodes.Element):
            parts.append(_inline_text(child))
    return "".join(parts)


def _doctree(text: str) -> nodes.document:
    # The sentinel must not occur in the input, or it would eat real spaces.
    source = text.replace(_DROPPED, "")
    source = _ROLE_SUFFIX.sub("", _ROLE_PREFIX.sub("", source))
    doctree: nodes.document = docutils.core.publish_doctree(
        source, settings_overrides=_SETTINGS
    )
    return doctree


def rst_skips_blocks(text: str) -> bool:
    """Whether *text* holds a block rst_paragraphs leaves out: a title, code,
    a table, a directive's output, a comment, a target or a skipped section."""
    for node in _doctree(text).findall(nodes.Element):
        if isinstance(node, _EXCLUDED_ANCESTORS):
            return True
        if isinstance(node, nodes.section) and _section_title(node) in _SKIPPED:
            return True
    return False


def rst_paragraphs(text: str) -> list[str]:
    """Return the prose paragraphs of *text* as plain, single-spaced strings."""
    doctree = _doctree(text)
    paragraphs: list[str] = []
    for paragraph in doctree.findall(nodes.paragraph):
        if _is_excluded(paragraph):
            continue
        plain = _DROPPED_WITH_SPACE.sub("", _inline_text(paragraph))
        plain = collapse_whitespace(plain)
        if plain:
            paragraphs.append(plain)
    return paragraphs
