"""The `llm` summariser: map each chunk to a partial summary, reduce them.

It plugs into `generate-summary` at three points and leaves the pipeline's
shape alone: `split` cuts the document by tokens with `split_for_model`,
the `summarize-chunk-N` steps run `summarize_chunks`, and `combine` runs
`combine`. Each model call is one step, so a failed call is retried alone.

Two ways to call the model, chosen by LLM_VIA_EXECUTOR:
- from the step itself with httpx (default): the function's concurrency
  limit, keyed on the provider, caps calls in flight across every run;
- through the executor (`step.ai.infer`): the executor makes the call, and
  the function holds no connection while the model writes. The executor
  sends every model call of one parallel group at once, so the map is sent
  in waves of LLM_MAX_CONCURRENCY: that caps one run, not all runs together.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import inngest
from inngest.experimental.ai import openai

from backend.store import JobNotFound, JobStore
from functions import summarizer
from functions.llm import prompts, provider
from functions.llm.config import LLMConfig
from functions.llm.tokens import Budget, chunk_by_tokens, trim_to_tokens
from functions.summarizer.items import SentenceItem

Step = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]


def split_for_model(
    text: str, fmt: str, *, chunk_tokens: int, overlap_tokens: int
) -> list[list[SentenceItem]]:
    """The document's prose in overlapping chunks a model can read whole."""
    sentences = summarizer.split_sentences(summarizer.extract_prose(text, fmt))
    return chunk_by_tokens(sentences, chunk_tokens, overlap_tokens)


class LLMSummarizer:
    name = "llm"

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.budget = Budget(config.context_tokens, config.max_output_tokens)

    @property
    def model(self) -> str:
        return self.config.model

    def concurrency(self) -> list[inngest.Concurrency]:
        """At most LLM_MAX_CONCURRENCY steps in flight per provider, across
        runs (env scope, so other functions with the same key share it)."""
        return [
            inngest.Concurrency(
                limit=self.config.max_concurrency,
                key=self.config.provider_key_expression,
                scope="env",
            )
        ]

    def splitter(self) -> Callable[[str, str], list[list[SentenceItem]]]:
        """`split_for_model` with this model's sizes; picklable for run_cpu."""
        return functools.partial(
            split_for_model,
            chunk_tokens=self.budget.chunk_tokens,
            overlap_tokens=self.budget.overlap_tokens,
        )

    async def summarize_chunks(
        self,
        ctx: inngest.Context,
        step: Step,
        jobs: JobStore,
        job_id: str,
        count: int,
    ) -> list[str]:
        """One partial summary per chunk, each from its own step."""
        answer_tokens = self.budget.partial_tokens(count)
        chunks = [
            _Chunk(jobs, job_id, position, count, answer_tokens)
            for position in range(count)
        ]
        if not self.config.via_executor:
            return list(
                await ctx.group.parallel(
                    tuple(
                        functools.partial(
                            step, chunk.name, functools.partial(self._summarize, chunk)
                        )
                        for chunk in chunks
                    )
                )
            )
        partials: list[str] = []
        for wave in _waves(chunks, self.config.max_concurrency):
            partials += await ctx.group.parallel(
                tuple(
                    functools.partial(self._infer_chunk, ctx, chunk) for chunk in wave
                )
            )
        return partials

    async def combine(
        self,
        ctx: inngest.Context,
        step: Step,
        jobs: JobStore,
        job_id: str,
        partials: list[str],
        keep: int,
    ) -> list[str]:
        """The summary's points, from the partial summaries in one call."""

        async def messages() -> list[prompts.Message]:
            title = (await jobs.get_job(job_id)).title
            # Map answers were asked to fit; a model that wrote more is cut
            # so that the one reduce request still fits the context window.
            share = max(self.budget.input_tokens // max(len(partials), 1), 1)
            fitted = [trim_to_tokens(partial, share) for partial in partials]
            return prompts.combine_messages(fitted, points=keep, title=title)

        answer_tokens = self.config.max_output_tokens
        if self.config.via_executor:
            answer = await self._infer(ctx, "combine", await messages(), answer_tokens)
            points = _points(self._read(answer), keep)
            await jobs.finish_step(job_id, "combine")
            return points

        async def call() -> list[str]:
            text = await provider.complete(self.config, await messages(), answer_tokens)
            points = _points(text, keep)
            await jobs.finish_step(job_id, "combine")
            return points

        chosen: list[str] = await step("combine", call)
        return chosen

    async def _summarize(self, chunk: _Chunk) -> str:
        """Map, from the step itself (httpx)."""
        partial = await provider.complete(
            self.config, await chunk.messages(), chunk.answer_tokens
        )
        await chunk.jobs.finish_step(chunk.job_id, chunk.name)
        return partial

    async def _infer_chunk(self, ctx: inngest.Context, chunk: _Chunk) -> str:
        """Map, through the executor (step.ai.infer)."""
        try:
            messages = await chunk.messages()
        except JobNotFound:
            # The function is replayed after `save` has deleted the chunks;
            # every model step is answered by then, so the SDK returns its
            # stored answer and sends no request. A job that did not
            # succeed (a cancel seen before the executor stopped the run)
            # has nothing left to summarise.
            job = await chunk.jobs.get_job(chunk.job_id)
            if job.status != "succeeded":
                raise inngest.NonRetriableError(
                    "the job ended before its chunks were summarised"
                ) from None
            messages = []
        answer = await self._infer(ctx, chunk.name, messages, chunk.answer_tokens)
        partial = self._read(answer)
        await chunk.jobs.finish_step(chunk.job_id, chunk.name)
        return partial

    async def _infer(
        self,
        ctx: inngest.Context,
        name: str,
        messages: list[prompts.Message],
        max_tokens: int,
    ) -> dict[str, object]:
        adapter = openai.Adapter(
            auth_key=self.config.key,
            base_url=self.config.base_url,
            model=self.config.model,
        )
        body = provider.request_body(self.config, messages, max_tokens)
        try:
            return await ctx.step.ai.infer(name, adapter=adapter, body=body)
        except inngest.StepError as exc:
            raise provider.gateway_failure(exc, self.config) from None

    def _read(self, answer: dict[str, object]) -> str:
        """The text of an answer the executor stored as a step's result.

        A retry would read the same stored answer, so one that is not a
        chat completion fails the job now instead of spending attempts.
        """
        try:
            return provider.read_answer(answer, self.config)
        except provider.MalformedAnswer as exc:
            raise inngest.NonRetriableError(str(exc)) from None


@dataclass(frozen=True)
class _Chunk:
    """One map step: which chunk of which job, and its answer budget."""

    jobs: JobStore
    job_id: str
    position: int
    count: int
    answer_tokens: int

    @property
    def name(self) -> str:
        return f"summarize-chunk-{self.position}"

    async def messages(self) -> list[prompts.Message]:
        items = await self.jobs.load_chunk(self.job_id, self.position)
        title = (await self.jobs.get_job(self.job_id)).title
        return prompts.chunk_messages(
            " ".join(str(item["text"]) for item in items),
            number=self.position + 1,
            total=self.count,
            words=max(30, self.answer_tokens * 3 // 5),
            title=title,
        )


def _points(text: str, keep: int) -> list[str]:
    points = prompts.summary_points(text, keep)
    if not points:
        raise provider.MalformedAnswer("the model's summary has no text")
    return points


def _waves(items: list[_Chunk], size: int) -> list[list[_Chunk]]:
    """`items` in consecutive groups of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]
