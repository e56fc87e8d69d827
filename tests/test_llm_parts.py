"""The `llm` summariser's parts on their own: token budget and chunking,
prompts, settings, and the provider client against the stand-in model."""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Iterator

import httpx
import inngest
import pytest

from digest.settings import Settings
from functions.llm import LLMConfig, LLMNotConfigured, prompts, provider
from functions.llm.tokens import Budget, chunk_by_tokens, estimate_tokens
from tests.conftest import CORPUS
from tests.fake_model_server import FakeModelServer, Reply, stand_in_model

KEY = "sk-parts-0123456789abcdef"


@pytest.fixture(scope="module")
def model() -> Iterator[FakeModelServer]:
    with stand_in_model() as fake:
        yield fake


def _config(model: FakeModelServer | None = None, **changes: object) -> LLMConfig:
    values: dict[str, object] = {
        "summarizer": "llm",
        "llm_base_url": model.url if model else "http://127.0.0.1:9/v1",
        "llm_model": "stand-in-model",
        "llm_api_key": KEY,
        "llm_timeout_seconds": 2,
        **changes,
    }
    return LLMConfig.from_settings(Settings(**values))  # type: ignore[arg-type]


def test_estimate_errs_high_for_words_and_counts_cjk_per_character() -> None:
    assert estimate_tokens("the cat sat.") == 4
    assert estimate_tokens("internationalisation") == 5
    assert estimate_tokens("東京都") == 3
    assert estimate_tokens("") == 0


def test_chunks_fit_their_budget_and_overlap() -> None:
    sentences = [f"Sentence number {i} says something short." for i in range(200)]
    chunks = chunk_by_tokens(sentences, max_tokens=120, overlap_tokens=20)

    assert len(chunks) > 5
    for chunk in chunks:
        assert sum(estimate_tokens(item["text"]) for item in chunk) <= 120
    for before, after in itertools.pairwise(chunks):
        # The next chunk starts with the last sentence(s) of this one.
        assert after[0]["position"] <= before[-1]["position"]
        assert after[-1]["position"] > before[-1]["position"]
    positions = {item["position"] for chunk in chunks for item in chunk}
    assert positions == set(range(200))


def test_a_sentence_longer_than_a_chunk_is_cut_between_words() -> None:
    long = " ".join(["word"] * 500) + "."
    chunks = chunk_by_tokens(["Short one.", long, "Last."], 100, 10)

    assert all(
        sum(estimate_tokens(item["text"]) for item in chunk) <= 100 for chunk in chunks
    )
    assert " ".join(i["text"] for c in chunks for i in c).count("word") >= 500


def test_budget_derives_from_the_context_window() -> None:
    budget = Budget(context_tokens=8192, max_output_tokens=512)
    assert budget.chunk_tokens == 8192 - 300 - 512
    assert budget.overlap_tokens == budget.chunk_tokens // 10
    # Partial summaries shrink as chunks multiply, so that reduce fits.
    assert budget.partial_tokens(2) == 512
    assert budget.partial_tokens(100) * 100 <= budget.input_tokens
    assert budget.partial_tokens(10_000) == 64


def test_real_document_chunks_fit_the_model() -> None:
    from functions.llm.summarize import split_for_model

    text = (CORPUS / "pep-0008.rst").read_text(encoding="utf-8")
    budget = Budget(context_tokens=2048, max_output_tokens=256)
    chunks = split_for_model(
        text,
        "rst",
        chunk_tokens=budget.chunk_tokens,
        overlap_tokens=budget.overlap_tokens,
    )
    assert len(chunks) > 3
    for chunk in chunks:
        body = " ".join(item["text"] for item in chunk)
        messages = prompts.chunk_messages(
            body, number=1, total=len(chunks), words=100, title="PEP 8"
        )
        used = sum(estimate_tokens(m["content"]) for m in messages)
        assert used + budget.max_output_tokens <= budget.context_tokens


def test_summary_points_drop_bullets_numbers_and_blank_lines() -> None:
    answer = "1. First point.\n\n- Second point.\n* Third.\n• Fourth.\nFifth."
    assert prompts.summary_points(answer, 4) == [
        "First point.",
        "Second point.",
        "Third.",
        "Fourth.",
    ]


def test_llm_without_endpoint_or_model_is_refused_with_what_to_set() -> None:
    with pytest.raises(LLMNotConfigured, match="LLM_BASE_URL and LLM_MODEL"):
        LLMConfig.from_settings(Settings(summarizer="llm"))


def test_config_repr_hides_the_key() -> None:
    assert KEY not in repr(_config())


def test_retry_after_in_seconds_milliseconds_or_as_a_date() -> None:
    assert provider.retry_after(httpx.Headers({"retry-after": "3"})) == (
        datetime.timedelta(seconds=3)
    )
    assert provider.retry_after(httpx.Headers({"retry-after-ms": "250"})) == (
        datetime.timedelta(milliseconds=250)
    )
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    wait = provider.retry_after(
        httpx.Headers({"retry-after": later.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    )
    assert wait is not None
    assert datetime.timedelta(seconds=25) < wait <= datetime.timedelta(seconds=30)
    assert provider.retry_after(httpx.Headers({"retry-after": "soon"})) is None


async def test_stand_in_model_answer_is_read(model: FakeModelServer) -> None:
    model.reset()
    text = await provider.complete(
        _config(model),
        prompts.chunk_messages("A. B. C.", number=1, total=1, words=30, title=None),
        50,
    )
    assert text == "A. B."
    assert model.seen[0].body["max_tokens"] == 50


@pytest.mark.parametrize(
    ("reply", "raised"),
    [
        (Reply(429, {"retry-after": "1"}), inngest.RetryAfterError),
        (Reply(503, {"retry-after": "1"}), inngest.RetryAfterError),
        (Reply(500), provider.ModelUnavailable),
        (Reply(408), provider.ModelUnavailable),
        (Reply(400), inngest.NonRetriableError),
        (Reply(401, echo_key=True), inngest.NonRetriableError),
        (Reply(403), inngest.NonRetriableError),
        (Reply(404), inngest.NonRetriableError),
        (Reply(body=b"{oops"), provider.MalformedAnswer),
        (Reply(body=b'{"choices": []}'), provider.MalformedAnswer),
        (Reply(delay=3), provider.ModelTimeout),
    ],
    ids=lambda value: getattr(value, "__name__", None) or repr(value)[:40],
)
async def test_stand_in_model_failures_are_classified(
    model: FakeModelServer, reply: Reply, raised: type[Exception]
) -> None:
    model.reset(reply)
    with pytest.raises(raised) as caught:
        await provider.complete(_config(model), [{"role": "user", "content": "hi"}], 10)
    assert KEY not in str(caught.value)
