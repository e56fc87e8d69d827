"""Summaries and extracted prose of real PEPs stay faithful to the source."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from functions.summarizer import (
    detect_format,
    extract_prose,
    split_sentences,
    summarize,
)

_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
_DIRECTIVE = re.compile(r"^\s*\.\. ([A-Za-z][\w:-]*)::(.*)$")
_LINK_TARGET = re.compile(r"^\s*\.\. (_[^:]+:)")
_FOOTNOTE = re.compile(r"^\.\. \[[^\]]+\]\s+(\S.*)$")
# "Paragraph::" or a code directive; other directives (note, rubric) are not
# literal blocks.
_LITERAL_OPENER = re.compile(
    r"(^(?!\s*\.\. ).*::\s*$)|(^\s*\.\. (code|code-block|sourcecode)::)"
)


def plain(text: str) -> str:
    """Reduce rst source or extracted text to comparable plain words.

    Applied to both sides of a comparison, it removes only what the
    extractor is meant to strip: inline markup characters, role names,
    explicit link targets, footnote references and line breaks.
    """
    text = re.sub(
        r"(?i):(pep|rfc)(?:-reference)?:`(\d+)`",
        lambda m: f"{m.group(1).upper()} {m.group(2)}",
        text,
    )
    text = re.sub(r":[A-Za-z][\w.+-]*(?::[\w.+-]+)*:(?=`)", "", text)
    text = re.sub(r"`([^`<>]+?)\s*<[^<>`]+>`", r"`\1`", text)
    text = re.sub(r"\s*\[[^\]\s]+\]_", "", text)
    text = re.sub(r"`__?(?!\w)", "`", text)
    text = re.sub(r"[`*\\|]", "", text)
    text = re.sub(r"(?<=\w)__?(?!\w)", "", text)
    return " ".join(text.split())


def header_lines(source: str) -> list[str]:
    block = source.split("\n\n", 1)[0]
    return [" ".join(line.split()) for line in block.splitlines() if line.strip()]


def headings(source: str) -> list[str]:
    lines = source.splitlines()
    return [
        lines[i].strip()
        for i in range(len(lines) - 1)
        if lines[i].strip()
        and not lines[i][0].isspace()
        and not _UNDERLINE.match(lines[i])
        and _UNDERLINE.match(lines[i + 1])
    ]


def literal_lines(source: str) -> list[str]:
    """Lines of the indented blocks introduced by ``::`` or a code directive."""
    found: list[str] = []
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if not _LITERAL_OPENER.search(line):
            continue
        # A block ends at the indentation of the text that introduced it,
        # which for "- Example::" is the column after the bullet.
        marker = re.match(r"\s*(?:(?:[-*+]|\d+\.|#\.)\s+)?", line)
        indent = marker.end() if marker else 0
        for follower in lines[i + 1 :]:
            if not follower.strip():
                continue
            if len(follower) - len(follower.lstrip()) <= indent:
                break
            if not follower.lstrip().startswith(":"):  # directive options
                found.append(" ".join(follower.split()))
    return found


def grid_table_cells(source: str) -> list[str]:
    cells: list[str] = []
    for line in source.splitlines():
        if line.startswith("|") and line.rstrip().endswith("|"):
            cells += [plain(cell) for cell in line.strip("|\n ").split("|")]
    # Single-word cells ("and") may well be prose elsewhere in the PEP.
    return [cell for cell in cells if " " in cell]


@pytest.fixture
def prose(corpus_doc: str) -> list[str]:
    return extract_prose(corpus_doc, detect_format(corpus_doc))


def test_corpus_is_detected_as_rst(corpus_doc: str) -> None:
    assert detect_format(corpus_doc) == "rst"


def test_summary_sentences_occur_in_the_source(corpus_doc: str) -> None:
    source = plain(corpus_doc)
    summary = summarize(corpus_doc, max_sentences=8)
    assert summary
    for sentence in summary:
        assert plain(sentence) in source, sentence


def test_every_extracted_sentence_occurs_in_the_source(corpus_doc: str) -> None:
    source = plain(corpus_doc)
    sentences = split_sentences(extract_prose(corpus_doc, "rst"))
    missing = [s for s in sentences if plain(s) not in source]
    assert missing == []


def test_header_block_is_not_prose(corpus_doc: str, prose: list[str]) -> None:
    lines = header_lines(corpus_doc)
    assert lines[0].startswith("PEP: ")
    assert any(line.startswith("Title: ") for line in lines)
    text = "\n".join(prose + summarize(corpus_doc, max_sentences=10))
    for line in lines:
        assert line not in text
    assert not any(p.startswith(("PEP:", "Title:", "Author:")) for p in prose)


def test_headings_are_not_prose(corpus_doc: str, prose: list[str]) -> None:
    titles = headings(corpus_doc)
    assert "Copyright" in titles
    summary = summarize(corpus_doc, max_sentences=10)
    for title in titles:
        assert title not in prose
        assert title not in summary


def test_code_and_literal_blocks_are_not_prose(
    corpus_doc: str, prose: list[str]
) -> None:
    code = [line for line in literal_lines(corpus_doc) if len(line) >= 20]
    assert code  # every corpus PEP has code or literal blocks
    joined = "\n".join(prose)
    leaked = [line for line in code if line in joined]
    assert leaked == []


def test_directives_targets_and_footnotes_are_not_prose(
    corpus_doc: str, prose: list[str]
) -> None:
    joined = "\n".join(prose)
    for line in corpus_doc.splitlines():
        if directive := _DIRECTIVE.match(line):
            assert f"{directive.group(1)}::" not in joined
            argument = directive.group(2).strip()
            assert not argument or argument not in prose
        if target := _LINK_TARGET.match(line):
            assert target.group(1) not in joined
        if footnote := _FOOTNOTE.match(line):
            assert plain(footnote.group(1)) not in prose


def test_pep8_specifics(read_corpus: Callable[[str], str]) -> None:
    source = read_corpus("pep-0008.rst")
    prose = extract_prose(source, "rst")
    joined = "\n".join(prose)
    # Footnote reference dropped with its space; :pep: role rendered.
    assert "with some additions from Barry's style guide." in joined
    assert "This document and PEP 257 (Docstring Conventions)" in joined
    # A title-with-target role keeps its title only.
    assert "style guidelines for the C code in the C implementation" in joined
    assert "<7>" not in joined
    # Footnote bodies, the rubric and the Copyright boilerplate are not prose.
    assert not any(p.startswith("Hanging indentation is a") for p in prose)
    assert "Barry's GNU Mailman style guide" not in joined
    assert "placed in the public domain" not in joined


def test_table_cells_are_not_prose(read_corpus: Callable[[str], str]) -> None:
    source = read_corpus("pep-0492.rst")
    cells = grid_table_cells(source)
    assert "Boolean OR" in cells
    prose = extract_prose(source, "rst")
    assert [cell for cell in cells if cell in prose] == []
    assert not any(p.startswith(("+---", "|")) for p in prose)


def test_zen_aphorisms_in_code_block_are_skipped(
    read_corpus: Callable[[str], str],
) -> None:
    source = read_corpus("pep-0020.rst")
    prose = extract_prose(source, "rst")
    joined = " ".join(prose)
    assert "Beautiful is better than ugly." not in joined
    assert "import this" not in joined
    assert prose[0].startswith("Long time Pythoneer Tim Peters")


@pytest.mark.parametrize("k", [1, 3, 7])
def test_summary_respects_k_and_document_order(corpus_doc: str, k: int) -> None:
    summary = summarize(corpus_doc, max_sentences=k)
    assert 1 <= len(summary) <= k
    sentences = split_sentences(extract_prose(corpus_doc, "rst"))
    positions = [sentences.index(sentence) for sentence in summary]
    assert positions == sorted(positions)
    assert len(set(summary)) == len(summary)


def test_summaries_are_deterministic(corpus_doc: str) -> None:
    assert summarize(corpus_doc) == summarize(corpus_doc)


def test_concatenated_documents_with_duplicate_targets(
    read_corpus: Callable[[str], str],
) -> None:
    # Repeating a PEP duplicates its link targets and footnote labels, which
    # docutils reports as errors and leaves as raw markup in the paragraphs.
    source = read_corpus("pep-0492.rst")
    doubled = source + "\n\n" + source.split("\n\n", 1)[1]
    sentences = split_sentences(extract_prose(doubled, "rst"))
    plain_source = plain(source)
    assert [s for s in sentences if plain(s) not in plain_source] == []
    assert not any(re.search(r"[`|]|\]_|\w\(\)_", s) for s in sentences)
