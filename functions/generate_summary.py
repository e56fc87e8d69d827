"""`generate-summary`: a document becomes a summary in durable steps.

load -> split -> summarize-chunk-0..N (in parallel) -> combine -> save

Each step is retried on its own, and each finished step moves the job's
progress. Step outputs stay small (the chunks themselves live in the job
store), so the executor's per-run state does not grow with the document.
SUMMARIZER picks who summarises (the extractive ranker, or a language model
in functions/llm/); the steps are the same either way.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import inngest

from backend.store import JobNotFound, JobStore
from backend.store.jobs import FIXED_STEPS
from backend.store.shared import shared_store
from digest.settings import Settings
from functions import summarizer
from functions.cleanup import build_cleanup
from functions.cpu import run_cpu
from functions.faults import check_fault
from functions.llm import LLMConfig, LLMSummarizer
from functions.sources.document import fetch_document, html_document
from functions.sources.fetch import FetchLimits, FetchRefused

log = logging.getLogger("digest.functions.summary")

SUMMARY_REQUESTED = "summary/requested"
CANCEL_REQUESTED = "summary/cancel.requested"
RETRIES = 3


def _split_document(
    text: str, fmt: str, chunk_chars: int
) -> list[list[summarizer.SentenceItem]]:
    paragraphs = summarizer.extract_prose(text, fmt)
    sentences = summarizer.split_sentences(paragraphs)
    return summarizer.chunk_sentences(sentences, max_chars=chunk_chars)


def build_functions(
    client: inngest.Inngest, settings: Settings
) -> list[inngest.Function[Any]]:
    """The step functions Digest serves, bound to `client` and `settings`."""

    limits = FetchLimits(
        loopback_ports=frozenset(settings.fetch_allow_loopback_for_tests)
    )
    # SUMMARIZER=llm swaps the chunking, the per-chunk steps and `combine`
    # for a language model's; None keeps the offline extractive summariser.
    llm = (
        LLMSummarizer(LLMConfig.from_settings(settings))
        if settings.summarizer == "llm"
        else None
    )

    async def store() -> JobStore:
        return await shared_store(settings.database_url, migrate=settings.is_dev)

    async def mark_failed(ctx: inngest.Context) -> None:
        original = ctx.event.data.get("event")
        error = ctx.event.data.get("error")
        job_id = _job_id_of(original)
        if job_id is None:
            log.error("failure event without a job id: %s", ctx.event.data)
            return
        reason = readable_error(error)
        try:
            await (await store()).fail(job_id, reason)
        except JobNotFound:
            log.warning(
                "run for job %s failed, and there is no such job: %s", job_id, reason
            )
            return
        except Exception as exc:
            # The SDK runs a failure handler once, never retried. Raising
            # shows the run as failed on the executor, and the backend's
            # reconciler marks the job from that run once the store is back.
            log.error(
                "job %s failed (%s) and could not be marked failed: %s: %s; "
                "the backend's reconciler will mark it",
                job_id,
                reason,
                type(exc).__name__,
                exc,
            )
            raise
        log.warning("job %s failed: %s", job_id, reason)

    @client.create_function(
        fn_id="generate-summary",
        name="Generate summary",
        trigger=inngest.TriggerEvent(event=SUMMARY_REQUESTED),
        retries=RETRIES,
        on_failure=mark_failed,
        concurrency=llm.concurrency() if llm is not None else None,
        # The executor stops the run at its next step boundary; the API has
        # already marked the job cancelled, whatever the executor supports.
        cancel=[
            inngest.Cancel(
                event=CANCEL_REQUESTED,
                if_exp="async.data.job_id == event.data.job_id",
            )
        ],
    )
    async def generate_summary(ctx: inngest.Context) -> dict[str, Any]:
        job_id = _job_id_of(ctx.event.model_dump())
        if job_id is None:
            raise inngest.NonRetriableError(
                "the event has no data.job_id; send summary/requested with "
                '{"job_id": "<id>"}'
            )
        jobs = await store()

        def step(name: str, body: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
            async def guarded() -> Any:
                started = time.perf_counter()
                try:
                    job = await jobs.get_job(job_id)
                except JobNotFound:
                    # Deleted by retention, or an event sent by hand: no
                    # attempt would find it, so none is spent.
                    raise inngest.NonRetriableError(
                        f"there is no job {job_id}: it was deleted, or the "
                        "event was not sent by Digest; submit the document "
                        "again through the API"
                    ) from None
                if job.status == "cancelled":
                    # For an executor that did not stop the run on the
                    # cancel event: no more work for a cancelled job.
                    raise inngest.NonRetriableError("the job was cancelled")
                check_fault(name, ctx.attempt)
                result = await body()
                log.info(
                    "job %s step %s done in %.0f ms (attempt %d)",
                    job_id,
                    name,
                    (time.perf_counter() - started) * 1000,
                    ctx.attempt + 1,
                )
                return result

            return ctx.step.run(name, guarded)

        async def finish(
            chosen: list[str], by: str, model: str | None
        ) -> dict[str, Any]:
            async def save() -> None:
                await jobs.finish_step(job_id, "save")
                await jobs.succeed(job_id, chosen, summarizer=by, model=model)

            await step("save", save)
            log.info(
                "job %s succeeded with %d sentence(s) from the %s summariser",
                job_id,
                len(chosen),
                by,
            )
            return {"job_id": job_id, "sentences": len(chosen)}

        async def load() -> dict[str, Any]:
            await jobs.mark_running(job_id)
            await _materialise_source(jobs, job_id, limits)
            text, declared = await jobs.get_source(job_id)
            fmt = (
                declared
                if declared != "auto"
                else await run_cpu(summarizer.detect_format, text)
            )
            job = await jobs.get_job(job_id)
            await jobs.finish_step(job_id, "load")
            return {"format": fmt, "chars": len(text), "keep": job.max_sentences}

        loaded = await step("load", load)

        async def split() -> dict[str, Any]:
            text, _ = await jobs.get_source(job_id)
            if llm is not None:
                chunks = await run_cpu(llm.splitter(), text, loaded["format"])
            else:
                chunks = await run_cpu(
                    _split_document, text, loaded["format"], settings.chunk_chars
                )
            sentences = sum(len(chunk) for chunk in chunks)
            if sentences == 0:
                # Say what is true of this document: blocks that were skipped,
                # or just no sentence (a lone word, a few words, no stop).
                reason = await run_cpu(
                    summarizer.no_prose_reason, text, loaded["format"]
                )
                raise inngest.NonRetriableError(reason)
            await jobs.save_chunks(job_id, chunks)
            total = len(FIXED_STEPS) + len(chunks)
            await jobs.finish_step(job_id, "split", total=total)
            return {"chunks": len(chunks), "sentences": sentences}

        parts = await step("split", split)
        keep: int = loaded["keep"]

        if llm is not None:
            partials = await llm.summarize_chunks(
                ctx, step, jobs, job_id, parts["chunks"]
            )
            chosen = await llm.combine(ctx, step, jobs, job_id, partials, keep)
            return await finish(chosen, llm.name, llm.model)

        async def summarize_chunk(position: int) -> list[summarizer.Candidate]:
            chunk = [
                summarizer.SentenceItem(position=item["position"], text=item["text"])
                for item in await jobs.load_chunk(job_id, position)
            ]
            best = await run_cpu(summarizer.rank_chunk, chunk, keep)
            await jobs.finish_step(job_id, f"summarize-chunk-{position}")
            return best

        candidate_lists = await ctx.group.parallel(
            tuple(
                functools.partial(
                    step,
                    f"summarize-chunk-{position}",
                    functools.partial(summarize_chunk, position),
                )
                for position in range(parts["chunks"])
            )
        )

        async def combine() -> list[str]:
            candidates = [item for found in candidate_lists for item in found]
            chosen = await run_cpu(summarizer.combine, candidates, keep)
            await jobs.finish_step(job_id, "combine")
            return chosen

        extracted: list[str] = await step("combine", combine)
        return await finish(extracted, "extractive", None)

    return [generate_summary, build_cleanup(client, settings, store)]


async def _materialise_source(jobs: JobStore, job_id: str, limits: FetchLimits) -> None:
    """Turn a URL or an HTML upload into the text the later steps read."""
    job = await jobs.get_job(job_id)
    try:
        if job.source_url is not None:
            text, fmt = await fetch_document(job.source_url, job.source_format, limits)
        elif job.source_format == "html":
            html, _ = await jobs.get_source(job_id)
            text, fmt = await html_document(html, source="the file"), "text"
        else:
            return
    except FetchRefused as exc:
        raise inngest.NonRetriableError(str(exc)) from None
    await jobs.set_source(job_id, text, fmt)


def _job_id_of(event: Any) -> str | None:
    if not isinstance(event, dict):
        return None
    data = event.get("data")
    job_id = data.get("job_id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None


def readable_error(error: Any) -> str:
    """A sentence a person can read from the SDK's error object (also the
    error of a failed run as the executor's REST API shows it)."""
    if not isinstance(error, dict):
        return "the summary could not be generated (no error detail was given)"
    name = str(error.get("name") or "Error")
    message = str(error.get("message") or error.get("error") or "no message")
    if name in {"NonRetriableError", "Error"}:
        return message
    return f"{name}: {message}"
