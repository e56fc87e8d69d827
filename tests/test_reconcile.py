"""The reconciler: a job whose run ended where the functions could not
record it still ends, and an event the executor dropped is sent again,
less and less often.

Real executor, real backends, real SQLite and PostgreSQL. The database
outage runs on a private PostgreSQL server (tests/pg_instance.py).
RECONCILE_AFTER_SECONDS is short here, so a quiet job is checked within a
second or two and a dropped event is first checked 0.5 s after its send.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from backend.reconcile import ExecutorRuns, ExecutorUnavailable
from backend.store import create_engine
from backend.store.models import JobEventRow, OutboxRow
from backend.store.outbox import recheck_delay
from digest import stack
from tests import pg
from tests.conftest import Stack, start_stack
from tests.pg_instance import pg_instance

QUICK = {"RECONCILE_AFTER_SECONDS": "0.5"}
TEXT = (
    "Runs end in many ways. Some end where nobody writes it down. "
    "The backend asks the executor how each run went. Then the job ends too."
)


def wait_for(
    what: str, check: Callable[[], Any], *, timeout: float = 90, running: Stack
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(
        f"{what} did not happen within {timeout}s\n"
        f"--- backend ---\n{running.backend.log_tail(40)}\n"
        f"--- executor ---\n{running.executor.log_tail()}"
    )


def executor_events(running: Stack, name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = running.executor_get(
        f"/v1/events?limit=1000&name={name}"
    )
    return found


def cancel_run_on_executor(running: Stack, job_id: str) -> None:
    """What the executor dashboard's Cancel button does."""
    [run] = running.runs_of(job_id)
    answer = httpx.delete(f"{running.executor.url}/v1/runs/{run['run_id']}", timeout=10)
    assert answer.status_code == 200, answer.text


def in_save_retries(running: Stack, job_id: str) -> bool:
    """Whether the job's `save` step failed (DIGEST_FAULTS) and waits for
    its next attempt: the run is in flight, the job quiet."""
    job = running.job(job_id)
    progress = job["progress"]
    return job["status"] == "running" and progress["done"] == progress["total"] - 1


def job_log(database_url: str, job_id: str) -> list[str]:
    """The kinds of the job's logged changes, oldest first."""

    async def read() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    select(JobEventRow.kind)
                    .where(JobEventRow.job_id == job_id)
                    .order_by(JobEventRow.seq)
                )
                return list(found.scalars())
        finally:
            await engine.dispose()

    return pg.run_apart(read())


def outbox_row(database_url: str, job_id: str) -> Any:
    async def read() -> Any:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                found = await connection.execute(
                    select(OutboxRow).where(OutboxRow.id == job_id)
                )
                return found.one()
        finally:
            await engine.dispose()

    return pg.run_apart(read())


# -- a run that fails while the database is away -------------------------------


def test_a_run_failing_while_the_database_is_away_fails_the_job_once_it_is_back(
    tmp_path: Path,
) -> None:
    with pg_instance() as server:
        running = start_stack(
            tmp_path,
            database_url=server.url,
            retry_interval=2.0,
            # `save` never succeeds, so the run fails for good whatever the
            # timing; the database is stopped before it does.
            backend_env={**QUICK, "DIGEST_FAULTS": "save=99"},
        )
        try:
            _ = running.token  # fetched while the database answers
            job_id = running.submit(TEXT)
            wait_for(
                "the save step failing",
                lambda: in_save_retries(running, job_id),
                running=running,
            )
            server.stop("fast")

            def handler_failed() -> bool:
                # The failure handler ran into the outage too: its own run
                # failed, so nothing in the functions marked the job.
                failed = executor_events(running, "inngest/function.failed")
                runs = [
                    run
                    for event in failed
                    for run in running.executor_get(
                        f"/v1/events/{event['internal_id']}/runs"
                    )
                ]
                return any(run["status"] == "Failed" for run in runs)

            wait_for("the failure handler failing", handler_failed, running=running)
            [run] = running.runs_of(job_id)
            assert run["status"] == "Failed", run

            server.start()
            job = running.wait(job_id, timeout=90)
            assert job["status"] == "failed", job
            # The run's own last error, as a sentence.
            assert job["error"], job
            assert "no error detail" not in job["error"]
            assert "no reason" not in job["error"]
            assert job_log(server.url, job_id).count("failed") == 1
            assert "marked failed from its run" in running.backend.log_tail(200)
        finally:
            running.backend.stop()
            running.executor.stop()


# -- a run cancelled on the executor --------------------------------------------


def test_a_run_cancelled_through_the_executor_api_cancels_the_job(
    tmp_path: Path,
) -> None:
    running = start_stack(
        tmp_path,
        # A failed `save` waits a minute for its next attempt: the run stays
        # in flight while nothing moves the job.
        retry_interval=60.0,
        backend_env={**QUICK, "DIGEST_FAULTS": "save=99"},
    )
    try:
        job_id = running.submit(TEXT)
        wait_for(
            "the save step failing",
            lambda: in_save_retries(running, job_id),
            running=running,
        )
        cancel_run_on_executor(running, job_id)

        job = running.wait(job_id, timeout=60)
        assert job["status"] == "cancelled", job
        database = f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}"
        assert job_log(database, job_id)[-1] == "cancelled"
    finally:
        running.backend.stop()
        running.executor.stop()


# -- an event the executor dropped ---------------------------------------------


def test_a_dropped_event_is_sent_again_with_a_growing_wait_then_runs_once(
    tmp_path: Path,
) -> None:
    executor = stack.start_executor(
        tmp_path / "executor", extra_args=["--retry-interval", "0.2"]
    )
    database = f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}"
    backend = stack.start_backend(
        executor_url=executor.url,
        database_url=database,
        log_path=tmp_path / "backend.log",
        env=QUICK,
    )
    running = Stack(executor=executor, backend=backend, home=tmp_path)
    try:
        # Nothing is synced yet: the executor takes the event and starts
        # no run for it.
        job_id = running.submit(TEXT)

        def sends() -> list[dict[str, Any]]:
            return [
                event
                for event in executor_events(running, "summary/requested")
                if event["id"] == job_id
            ]

        wait_for("a fourth send", lambda: len(sends()) >= 4, running=running)

        def recorded() -> Any:
            # Between a send and its record the row is in the relay's hands.
            row = outbox_row(database, job_id)
            return row if row.sent_at and len(row.executor_event_ids) >= 4 else None

        row = wait_for("the fourth send recorded", recorded, running=running)
        # Every send the executor took is known by the executor's own id,
        # and the next check waits twice as long as the one before.
        assert set(row.executor_event_ids) <= {e["internal_id"] for e in sends()}
        count = len(row.executor_event_ids)
        assert count >= 4
        first = timedelta(seconds=0.5)
        assert row.available_at - row.sent_at == recheck_delay(first, count)
        assert recheck_delay(first, count) == first * 2 ** (count - 1)
        assert running.runs_of(job_id) == []
        assert running.job(job_id)["status"] == "queued"

        stack.sync_app(backend.url)
        job = running.wait(job_id, timeout=90)
        assert job["status"] == "succeeded", job
        assert len(running.runs_of(job_id)) == 1
    finally:
        backend.stop()
        executor.stop()


# -- several replicas -----------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with pg.temporary_database() as url:
        yield url


def test_two_backends_reconciling_one_database_mark_each_job_once(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {**QUICK, "DIGEST_FAULTS": "save=99"}
    running = start_stack(
        tmp_path, database_url=postgres_url, retry_interval=60.0, backend_env=env
    )
    # A second replica on the same database, not synced (the first one
    # serves the functions); it reconciles all the same.
    second = stack.start_backend(
        executor_url=running.executor.url,
        database_url=postgres_url,
        log_path=tmp_path / "second.log",
        env=env,
    )
    try:
        job_ids = [running.submit(f"{TEXT} Job {n}.") for n in range(6)]
        for job_id in job_ids:
            wait_for(
                f"job {job_id} failing its save step",
                lambda job_id=job_id: in_save_retries(running, job_id),
                running=running,
            )
        for job_id in job_ids:
            cancel_run_on_executor(running, job_id)

        for job_id in job_ids:
            assert running.wait(job_id, timeout=60)["status"] == "cancelled"
            assert job_log(postgres_url, job_id).count("cancelled") == 1
        marks = sum(
            log.count("marked cancelled")
            for log in (
                (tmp_path / "backend.log").read_text(),
                (tmp_path / "second.log").read_text(),
            )
        )
        assert marks == len(job_ids)
    finally:
        second.stop()
        running.backend.stop()
        running.executor.stop()


# -- the executor's REST API ------------------------------------------------------


@pytest.fixture
def cloud_executor(tmp_path: Path) -> Iterator[tuple[stack.Service, str]]:
    """An executor in cloud mode: its REST API wants the signing key."""
    key = "signkey-prod-" + secrets.token_hex(32)
    service = stack.start_executor(tmp_path, extra_args=["--signing-key", key])
    yield service, key
    service.stop()


async def test_the_executor_api_is_asked_with_the_signing_key_as_bearer(
    cloud_executor: tuple[stack.Service, str],
) -> None:
    service, key = cloud_executor
    some_event = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    # After a key rotation the old key is refused and the new one tried.
    rotated = ExecutorRuns(service.url, ["signkey-prod-" + "ab" * 32, key])
    try:
        assert await rotated.runs_of(some_event) == []
    finally:
        await rotated.close()

    keyless = ExecutorRuns(service.url, [])
    try:
        with pytest.raises(ExecutorUnavailable, match="401"):
            await keyless.runs_of(some_event)
    finally:
        await keyless.close()


async def test_an_executor_that_does_not_answer_is_unavailable() -> None:
    nobody = ExecutorRuns(f"http://{stack.LOOPBACK}:{stack.free_port()}", [])
    try:
        with pytest.raises(ExecutorUnavailable):
            await nobody.runs_of("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    finally:
        await nobody.close()


def test_the_recheck_wait_doubles_up_to_ten_minutes() -> None:
    first = timedelta(seconds=10)
    waits = [recheck_delay(first, sends).total_seconds() for sends in range(1, 10)]
    assert waits == [10, 20, 40, 80, 160, 320, 600, 600, 600]
    assert recheck_delay(first, 10_000) == timedelta(minutes=10)
