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
