"""The step functions one by one: splitting, chunking, ranking, combining."""

from __future__ import annotations

import json
import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import pytest

from functions.summarizer import (
    Candidate,
    SentenceItem,
    Summarizer,
    TextRankSummarizer,
    chunk_sentences,
    combine,
    extract_prose,
    rank_chunk,
    split_sentences,
    summarize,
)

CATS = [
    "Cats are small domesticated carnivorous mammals kept as pets.",
    "Domestic cats are valued by humans for companionship and hunting mice.",
    "The stock market fell sharply on Tuesday after the announcement.",
    "Cats communicate using meowing, purring and body language with humans.",
    "Many pet cats sleep for most of the day and hunt at night.",
]


def items(texts: list[str], start: int = 0) -> list[SentenceItem]:
    return [{"position": start + i, "text": t} for i, t in enumerate(texts)]


def test_split_sentences_keeps_real_sentences_only() -> None:
    paragraphs = [
        "Dr. Smith arrived at 5 p.m. on Monday.  He was late   again! Why?",
        "Optional:",
        "x = f(a, b)[0] + g(c, d) * 2 - 1",
        "See 3.14 and 2.71 in the table for the values.",
    ]
    assert split_sentences(paragraphs) == [
        "Dr. Smith arrived at 5 p.m. on Monday.",
        "He was late again!",
        "See 3.14 and 2.71 in the table for the values.",
    ]


def test_split_sentences_handles_huge_paragraphs() -> None:
    paragraph = " ".join(
        f"Sentence number {i} talks about item {i}." for i in range(3000)
    )
    sentences = split_sentences([paragraph])
    assert len(sentences) == 3000
    assert sentences[1234] == "Sentence number 1234 talks about item 1234."


def test_chunks_keep_positions_and_never_split_sentences() -> None:
    sentences = [f"Sentence {i} " + "word " * (i % 7) for i in range(40)]
    sentences = [s.strip() + "." for s in sentences]
    chunks = chunk_sentences(sentences, max_chars=100)
    flat = [item for chunk in chunks for item in chunk]
    assert flat == items(sentences)
    for chunk in chunks:
        assert len(chunk) == 1 or sum(len(i["text"]) for i in chunk) <= 100


def test_overlong_sentence_is_its_own_chunk() -> None:
    long = "word " * 50
    chunks = chunk_sentences(["Short one here.", long, "Another short one."], 40)
    assert [[i["position"] for i in chunk] for chunk in chunks] == [[0], [1], [2]]
    assert chunk_sentences([]) == []
    with pytest.raises(ValueError, match="positive"):
        chunk_sentences(["x"], max_chars=0)


def test_rank_chunk_prefers_the_central_topic() -> None:
    best = rank_chunk(items(CATS), 2)
    assert len(best) == 2
    assert all(c["position"] != 2 for c in best)  # the stock market outlier
    assert best[0]["score"] >= best[1]["score"]
    assert set(best[0]) == {"position", "text", "score"}
    assert isinstance(best[0]["score"], float)


def test_rank_chunk_is_independent_of_input_order() -> None:
    chunk = items(CATS, start=10)
    assert rank_chunk(chunk, 3) == rank_chunk(list(reversed(chunk)), 3)


@pytest.mark.parametrize(
    "texts",
    [
        ["Only one sentence lives in this chunk."],
        ["The same words again and again."] * 4,
        ["It is what it is.", "They were there and then.", "Is it not so?"],
        [],
    ],
    ids=["single", "identical", "stop-words-only", "empty"],
)
def test_rank_chunk_degenerate_inputs(texts: list[str]) -> None:
    best = rank_chunk(items(texts), 3)
    distinct = len(dict.fromkeys(texts))
    assert len(best) == min(3, distinct)
    assert [c["position"] for c in best] == sorted(c["position"] for c in best)


def test_rank_chunk_with_k_zero() -> None:
    assert rank_chunk(items(CATS), 0) == []


def test_json_round_trip_is_exact() -> None:
    best = rank_chunk(items(CATS), 5)
    assert json.loads(json.dumps(best)) == best
    chunk = json.loads(json.dumps(items(CATS)))
    assert rank_chunk(chunk, 5) == best


def test_combine_returns_document_order_without_duplicates() -> None:
    first = rank_chunk(items(CATS[:3]), 3)
    second = rank_chunk(items([*CATS[3:], CATS[0]], start=3), 3)
    summary = combine(first + second, 3)
    assert len(summary) == 3
    assert len(set(summary)) == 3
    order = [CATS.index(s) for s in summary]
    assert order == sorted(order)
    assert combine(second + first, 3) == summary
    assert combine([], 3) == []


def test_combine_rejects_malformed_records() -> None:
    bad: list[Candidate] = [{"position": "1", "text": "x", "score": 1.0}]  # type: ignore[typeddict-item]
    with pytest.raises(TypeError, match="position"):
        combine(bad, 1)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\n  ",
        "```\nx = 1 and y = 2 or z = 3\n```\n",
        "    code(line, one)\n    more()\n",
    ],
    ids=["empty", "blank", "fenced-code", "indented-code"],
)
def test_nothing_to_summarise(text: str) -> None:
    assert summarize(text) == []


def test_single_sentence_document() -> None:
    assert summarize("Just one sentence makes this document.") == [
        "Just one sentence makes this document."
    ]
    assert summarize("Just one sentence makes this document.", max_sentences=0) == []


def test_all_code_rst_document() -> None:
    text = (
        "Title\n=====\n\n.. code-block:: python\n\n"
        "   print('This reads like a sentence.')\n"
    )
    assert extract_prose(text, "rst") == []
    assert summarize(text) == []


def test_textrank_backend_satisfies_the_protocol() -> None:
    backend = TextRankSummarizer()
    assert isinstance(backend, Summarizer)
    best = backend.rank_chunk(items(CATS), 2)
    assert backend.combine(best, 2) == combine(rank_chunk(items(CATS), 2), 2)


def test_step_functions_pickle_for_process_pools() -> None:
    for function in (summarize, rank_chunk, combine, split_sentences, extract_prose):
        assert pickle.loads(pickle.dumps(function)) is function


def _summary_json(text: str) -> str:
    return json.dumps(summarize(text, max_sentences=6))


def test_same_bytes_in_another_process(read_corpus: Callable[[str], str]) -> None:
    text = read_corpus("pep-0572.rst")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        remote = pool.submit(_summary_json, text).result()
    assert remote == _summary_json(text)
