"""SUMMARIZER=llm end to end, both ways of calling the model: from the step
with httpx (`httpx`), and through the executor with step.ai.infer
(`executor`, LLM_VIA_EXECUTOR=true).

The model is `tests/fake_model_server.py`, a stand-in for a hosted
OpenAI-compatible endpoint on a loopback port; everything else is real:
executor, backend, SDK, SQLite. Each test scripts the stand-in's answers,
submits a document and reads the job, the run's steps and the requests
the stand-in received.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CORPUS, Stack, normalised
from tests.fake_model_server import (
    SHORT_DOCUMENT,
    FakeModelServer,
    Reply,
    files_containing,
    stack_with_stand_in,
    steps_by_name,
)

API_KEY = "sk-digest-test-" + secrets.token_hex(16)
WAYS = {"httpx": {}, "executor": {"LLM_VIA_EXECUTOR": "true"}}


@dataclass
class Running:
    way: str
    home: Path
    stack: Stack
    model: FakeModelServer

    @property
    def via_executor(self) -> bool:
        return self.way == "executor"

    def summarise(self, *replies: Reply, text: str = SHORT_DOCUMENT) -> dict:
        """Script the stand-in, submit `text` and wait for the job's end."""
        self.model.reset(*replies)
        return self.stack.wait(self.stack.submit(text, max_sentences=3))

    def chunk_step(self, job: dict) -> dict:
        return steps_by_name(self.stack, job["id"])["summarize-chunk-0"]


@pytest.fixture(scope="module", params=list(WAYS))
def llm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    home = tmp_path_factory.mktemp(f"llm-{request.param}")
    with stack_with_stand_in(home, API_KEY, **WAYS[request.param]) as (stack, fake):
        yield Running(request.param, home, stack, fake)


def test_document_is_mapped_per_chunk_then_reduced_by_stand_in_model(
    llm: Running,
) -> None:
    text = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
    job = llm.summarise(*[Reply(delay=0.3)] * 20, text=text)
    seen = llm.model.seen

    assert job["status"] == "succeeded", job
    assert (job["summarizer"], job["model"]) == ("llm", "stand-in-model")
    chunks = job["progress"]["total"] - 4
    assert chunks >= 3, "the small context window must give several chunks"
    assert job["progress"]["done"] == job["progress"]["total"]
    assert 1 <= len(job["sentences"]) <= 3
    # The stand-in answers with sentences of what it was sent: the points
    # trace back through the map answers to the document's prose.
    sent = " ".join(request.body["messages"][-1]["content"] for request in seen)
    for point in job["sentences"]:
        assert normalised(point) in normalised(sent), point

    # One request per chunk, then one for `combine`, all with the key.
    assert len(seen) == chunks + 1
    assert {request.authorization for request in seen} == {f"Bearer {API_KEY}"}
    assert "[part 1]" in seen[-1].body["messages"][-1]["content"]
    assert all(request.body["model"] == "stand-in-model" for request in seen)
    # LLM_MAX_CONCURRENCY=2: the function's concurrency limit (httpx), or
    # waves of two (executor).
    assert llm.model.most_in_flight <= 2

    steps = steps_by_name(llm.stack, job["id"])
    model_steps = {f"summarize-chunk-{i}" for i in range(chunks)} | {"combine"}
    assert set(steps) == {"load", "split", "save", *model_steps}
    for name in model_steps:
        assert steps[name]["status"] == "Completed"
        if llm.via_executor:
            # The step's result is the provider's answer, as on the
            # official server.
            assert steps[name]["op"] == "AIGateway"
            assert steps[name]["output"]["object"] == "chat.completion"


def test_stand_in_model_429_retry_after_is_honoured(llm: Running) -> None:
    job = llm.summarise(Reply(429, {"retry-after": "2"}, b'{"error": "busy"}'))

    assert job["status"] == "succeeded", job
    assert [request.status for request in llm.model.seen] == [429, 200, 200]
    # The executor's own backoff is 0.2 s in these tests: only the
    # provider's retry-after explains a longer wait.
    assert llm.model.seen[1].at - llm.model.seen[0].at >= 1.5


def test_stand_in_model_500_then_success(llm: Running) -> None:
    job = llm.summarise(Reply(500, body=b'{"error": {"message": "overloaded"}}'))

    assert job["status"] == "succeeded", job
    assert [request.status for request in llm.model.seen] == [500, 200, 200]
    assert llm.chunk_step(job)["attempts"] == 2


def test_slow_stand_in_model_within_the_timeout_is_waited_for(llm: Running) -> None:
    job = llm.summarise(Reply(delay=1.0), Reply(delay=1.0))

    assert job["status"] == "succeeded", job
    assert len(llm.model.seen) == 2


def test_stand_in_model_slower_than_the_timeout_is_retried(llm: Running) -> None:
    if llm.via_executor:
        pytest.skip("LLM_TIMEOUT_SECONDS bounds the step's own call only")
    # LLM_TIMEOUT_SECONDS is 2: the first answer comes too late.
    job = llm.summarise(Reply(delay=4.0))

    assert job["status"] == "succeeded", job
    assert llm.chunk_step(job)["attempts"] == 2


def test_cut_short_json_from_stand_in_model_is_retried(llm: Running) -> None:
    job = llm.summarise(Reply(body=b'{"choices": [{"message": '))

    assert job["status"] == "succeeded", job
    assert len(llm.model.seen) == 3


def test_stand_in_model_that_never_answers_json_fails_the_job_readably(
    llm: Running,
) -> None:
    job = llm.summarise(*[Reply(body=b"<html>gateway error</html>")] * 10)

    assert job["status"] == "failed", job
    assert "not valid JSON" in job["error"] or "not JSON" in job["error"], job
    assert "gateway error" in job["error"]
    assert len(llm.model.seen) == 4  # RETRIES + 1 attempts, then the job fails


def test_json_that_is_not_a_completion_fails_the_job_readably(llm: Running) -> None:
    job = llm.summarise(*[Reply(body=b'{"unexpected": "shape"}')] * 10)

    assert job["status"] == "failed", job
    assert "not a chat completion" in job["error"], job
    assert "unexpected" in job["error"]
    # Through the executor the answer is the step's stored result, which a
    # retry would read again: the job fails at once.
    assert len(llm.model.seen) == (1 if llm.via_executor else 4)


def test_stand_in_model_401_fails_the_job_at_once(llm: Running) -> None:
    job = llm.summarise(Reply(401, echo_key=True))

    assert job["status"] == "failed", job
    assert "HTTP 401" in job["error"], job
    assert "LLM_API_KEY" in job["error"]
    assert API_KEY not in job["error"]
    assert "[redacted]" in job["error"]
    assert len(llm.model.seen) == 1
    step = llm.chunk_step(job)
    assert step["attempts"] == 1
    assert API_KEY not in str(step["error"])


def test_api_key_is_in_no_log_database_or_run_record(llm: Running) -> None:
    # Runs after the others, whose requests all carried the key.
    assert any(r.authorization == f"Bearer {API_KEY}" for r in llm.model.seen)
    assert files_containing(llm.home, API_KEY) == []
    assert API_KEY not in llm.stack.backend.log_tail(10_000)
    assert API_KEY not in llm.stack.executor.log_tail(10_000)


def test_extractive_summariser_is_the_default_and_needs_no_model(
    digest_stack: Stack,
) -> None:
    job = digest_stack.wait(digest_stack.submit(SHORT_DOCUMENT, max_sentences=2))

    assert job["status"] == "succeeded", job
    assert job["summarizer"] == "extractive"
    assert job["model"] is None
