"""Short notes, one-line paragraphs and scripts without spaces still summarise."""

from __future__ import annotations

from functions.summarizer import summarize


def test_one_line_paragraphs_with_trailing_space_are_prose() -> None:
    text = (
        "The cat sat on the warm mat today. The dog slept by the fire all day. "
        "\n\nBirds sang in the tall green trees outside. "
    )
    assert summarize(text, 3, fmt="text") == [
        "The cat sat on the warm mat today.",
        "The dog slept by the fire all day.",
        "Birds sang in the tall green trees outside.",
    ]


def test_long_line_without_final_stop_is_prose_but_short_one_is_a_heading() -> None:
    text = (
        "Release notes\n\n"
        "This release makes every report faster and fixes the broken export\n"
    )
    assert summarize(text, 3, fmt="text") == [
        "This release makes every report faster and fixes the broken export"
    ]


def test_short_sentences_are_kept_when_nothing_longer_exists() -> None:
    assert summarize("Hello world. This is fine.", 3) == [
        "Hello world.",
        "This is fine.",
    ]


def test_text_without_spaces_between_words_is_kept() -> None:
    assert summarize("这是第一句话。这是第二句话。", 3) == [
        "这是第一句话。这是第二句话。"
    ]


def test_text_without_letters_has_no_summary() -> None:
    assert summarize("1234 5678\n\n---- ++++", 3) == []


def test_text_without_a_sentence_is_refused_for_that_not_for_skipped_blocks() -> None:
    from functions.summarizer import detect_format, no_prose_reason

    for text, words in [("x", "1 word"), ("a few words here", "4 words")]:
        fmt = detect_format(text)
        assert summarize(text, 3, fmt=fmt) == []
        reason = no_prose_reason(text, fmt)
        assert reason == (
            f"no sentence found: the document has {words} and no complete "
            "sentence; send prose of at least one sentence"
        )
        assert "skipped" not in reason


def test_document_whose_blocks_were_all_skipped_says_so() -> None:
    from functions.summarizer import detect_format, no_prose_reason

    for text in [
        "Heading\n=======\n\n::\n\n    x = 1\n",
        "# Only a heading\n",
        "```\ncode()\n```\n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
        "Notes\n\n    indented code\n",
    ]:
        fmt = detect_format(text)
        assert summarize(text, 3, fmt=fmt) == [], text
        assert no_prose_reason(text, fmt).startswith(
            "the document has no prose to summarise: headings, code blocks"
        ), text
