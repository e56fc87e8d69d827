"""Retention: old jobs go, with everything stored for them, and new ones stay;
on SQLite and on PostgreSQL, in the store and through the cron function."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, update

from backend.store import JobStore, open_store
from backend.store.models import (
    JobChunkRow,
    JobEventRow,
    JobRow,
    JobStepRow,
    OutboxRow,
)
from digest import stack
from tests.conftest import Stack

CHILDREN = (JobStepRow, JobChunkRow, JobEventRow, OutboxRow)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[JobStore]:
    opened = await open_store(database_url, migrate=True)
    yield opened
    await opened.close()


async def _job_with_everything(store: JobStore) -> str:
    job = await store.create_job(
        owner="o",
        text="A sentence. Two.",
        source_format="text",
        max_sentences=1,
        title=None,
    )
    await store.mark_running(job.id)
    await store.save_chunks(job.id, [[{"position": 0, "text": "A sentence."}]])
    await store.finish_step(job.id, "load")
    return job.id


async def _age(engine_store: JobStore, job_ids: list[str], days: float) -> None:
    async with engine_store.engine.begin() as connection:
        await connection.execute(
            update(JobRow)
            .where(JobRow.id.in_(job_ids))
            .values(updated_at=datetime.now(UTC) - timedelta(days=days))
        )


async def _rows_of(store: JobStore, job_id: str) -> dict[str, int]:
    async with store.engine.connect() as connection:
        counts = {}
        for table in (JobRow, *CHILDREN):
            key = JobRow.id if table is JobRow else table.job_id
            counts[table.__tablename__] = int(
                await connection.scalar(
                    select(func.count()).select_from(table).where(key == job_id)
                )
                or 0
            )
        return counts


async def test_jobs_unchanged_for_longer_than_the_age_go_with_all_their_rows(
    store: JobStore,
) -> None:
    old = [await _job_with_everything(store) for _ in range(5)]
    recent = await _job_with_everything(store)
    await _age(store, old, days=31)

    cutoff = datetime.now(UTC) - timedelta(days=30)
    # Small batches, so the loop over batches is what does the work.
    assert await store.delete_jobs_changed_before(cutoff, batch=2) == 5

    for job_id in old:
        assert set((await _rows_of(store, job_id)).values()) == {0}
    kept = await _rows_of(store, recent)
    assert kept["jobs"] == 1
    assert kept["outbox"] == 1
    assert kept["job_chunks"] == 1
    assert kept["job_steps"] == 1
    assert kept["job_events"] >= 3
    assert await store.delete_jobs_changed_before(cutoff) == 0


def test_the_cron_function_deletes_expired_jobs(
    database_url: str, tmp_path: Path
) -> None:
    backend_port = stack.free_port()
    backend_url = f"http://{stack.LOOPBACK}:{backend_port}"
    # One cron minute lasts one second, and the schedule fires every minute.
    executor = stack.start_executor(
        tmp_path / "executor",
        sdk_urls=[f"{backend_url}/api/inngest"],
        extra_args=["--retry-interval", "0.2", "--cron-tick", "1"],
    )
    backend = stack.start_backend(
        executor_url=executor.url,
        database_url=database_url,
        log_path=tmp_path / "backend.log",
        port=backend_port,
        env={"JOB_RETENTION_DAYS": "7", "JOB_RETENTION_CRON": "* * * * *"},
    )
    try:
        stack.sync_app(backend.url)
        running = Stack(executor=executor, backend=backend, home=tmp_path)
        old = running.submit("This job will be old. It goes.")
        new = running.submit("This job stays. It is new.")
        assert running.wait(old)["status"] == "succeeded"
        assert running.wait(new)["status"] == "succeeded"

        async def age_old() -> None:
            store = await open_store(database_url, migrate=False)
            try:
                await _age(store, [old], days=8)
            finally:
                await store.close()

        asyncio.run(age_old())
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=backend.url, headers=running.auth) as http:
            while http.get(f"/api/summaries/{old}").status_code != 404:
                assert time.monotonic() < deadline, backend.log_tail()
                time.sleep(0.2)
            assert http.get(f"/api/summaries/{new}").status_code == 200
        assert "deleted 1 job(s)" in backend.log_path.read_text()
    finally:
        backend.stop()
        executor.stop()
