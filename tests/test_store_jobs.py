"""The job store on SQLite and on PostgreSQL: the same models, the same
migrations, the same answers, and the same guarantees under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from backend.store import JobStore, open_store
from backend.store.models import JobStepRow


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[JobStore]:
    opened = await open_store(database_url, migrate=True)
    yield opened
    await opened.close()


async def _new_job(store: JobStore, owner: str = "ada") -> str:
    job = await store.create_job(
        owner=owner,
        text="One sentence. Another one.",
        source_format="text",
        max_sentences=3,
        title="t",
    )
    return job.id


async def test_a_job_goes_through_its_life(store: JobStore) -> None:
    job_id = await _new_job(store)
    await store.mark_running(job_id)
    await store.finish_step(job_id, "load")
    await store.finish_step(job_id, "split", total=5)
    await store.succeed(job_id, ["One sentence."])

    job = await store.get_job(job_id)
    assert job.status == "succeeded"
    assert job.summary == ["One sentence."]
    assert (job.progress.done, job.progress.total) == (2, 5)
    assert job.created_at.tzinfo is not None
    kinds = [event.kind for event in await store.events_after(job_id, 0)]
    assert kinds == ["status", "status", "progress", "progress", "completed"]
    assert [j.id for j in await store.list_jobs("ada", limit=10)] == [job_id]
    assert await store.list_jobs("bob", limit=10) == []


async def test_parallel_steps_count_once_each_in_commit_order(
    store: JobStore,
) -> None:
    job_id = await _new_job(store)
    await store.mark_running(job_id)
    steps = [f"summarize-chunk-{n}" for n in range(12)]
    # Every step twice, all at once: a re-run after a lost answer counts once.
    await asyncio.gather(*(store.finish_step(job_id, s) for s in steps + steps))

    job = await store.get_job(job_id)
    assert job.progress.done == len(steps)
    events = await store.events_after(job_id, 0)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    progress = [e.done for e in events if e.kind == "progress"]
    assert progress == list(range(1, len(steps) + 1))


async def test_steps_racing_a_cancel_never_count_after_it(store: JobStore) -> None:
    for _ in range(5):
        job_id = await _new_job(store)
        await store.mark_running(job_id)
        steps = [store.finish_step(job_id, f"step-{n}") for n in range(10)]
        await asyncio.gather(*steps[:5], store.cancel(job_id), *steps[5:])

        events = await store.events_after(job_id, 0)
        assert events[-1].kind == "cancelled"
        job = await store.get_job(job_id)
        # What a client saw last is what the job says: nothing moved after.
        assert job.progress.done == events[-1].done
        async with store.engine.connect() as connection:
            counted = await connection.scalar(
                select(func.count())
                .select_from(JobStepRow)
                .where(JobStepRow.job_id == job_id)
            )
        assert counted == events[-1].done


async def test_a_read_job_names_the_step_its_count_ends_with(store: JobStore) -> None:
    # The step's name and the count of finished steps are written in one
    # transaction; a reader must see both from the same moment, or a client
    # shows "step combine (6/6)" and never the last step's name.
    job_id = await _new_job(store)
    await store.mark_running(job_id)
    steps = 60
    seen: list[tuple[int, str | None]] = []

    async def write() -> None:
        for n in range(1, steps + 1):
            await store.finish_step(job_id, f"step-{n}")

    async def read() -> None:
        while True:
            job = await store.get_job(job_id)
            seen.append((job.progress.done, job.progress.step))
            if job.progress.done == steps:
                return

    await asyncio.gather(write(), read(), read())
    mismatched = [(n, step) for n, step in seen if n and step != f"step-{n}"]
    assert not mismatched, mismatched[:5]
