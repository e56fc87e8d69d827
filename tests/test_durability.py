"""Retries, failures and crashes: no job is lost, no finished step runs again."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from digest import stack
from tests.conftest import CORPUS, Stack, start_stack


def _stack_with(home: Path, faults: str) -> Iterator[Stack]:
    running = start_stack(home, backend_env={"DIGEST_FAULTS": faults})
    yield running
    running.backend.stop()
    running.executor.stop()


@pytest.fixture
def flaky_chunk_stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack_with(tmp_path, "summarize-chunk-0=2")


@pytest.fixture
def broken_combine_stack(tmp_path: Path) -> Iterator[Stack]:
    yield from _stack_with(tmp_path, "combine=99")


def test_step_that_fails_twice_then_succeeds(flaky_chunk_stack: Stack) -> None:
    text = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
    job = flaky_chunk_stack.wait(flaky_chunk_stack.submit(text))
    assert job["status"] == "succeeded", job

    runs = flaky_chunk_stack.runs_of(job["id"])
    steps = flaky_chunk_stack.executor_get(f"/v1/runs/{runs[0]['run_id']}/steps")
    by_name = {step["name"]: step for step in steps}
    assert by_name["summarize-chunk-0"]["attempts"] == 3
    assert by_name["load"]["attempts"] == 1


def test_function_that_exhausts_retries_ends_failed(
    broken_combine_stack: Stack,
) -> None:
    text = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
    job = broken_combine_stack.wait(broken_combine_stack.submit(text))
    assert job["status"] == "failed", job
    assert "injected fault in step 'combine'" in job["error"]
    assert job["summary"] is None
    runs = broken_combine_stack.runs_of(job["id"])
    assert [run["status"] for run in runs] == ["Failed"]


def test_event_sent_again_once_the_executor_is_back(tmp_path: Path) -> None:
    executor_port = stack.free_port()
    executor_url = f"http://{stack.LOOPBACK}:{executor_port}"
    backend = stack.start_backend(
        executor_url=executor_url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
        log_path=tmp_path / "backend.log",
    )
    executor = None
    try:
        running = Stack(executor=None, backend=backend, home=tmp_path)  # type: ignore[arg-type]
        job_id = running.submit("The executor is down. This job must still run later.")
        time.sleep(1)
        assert running.job(job_id)["status"] == "queued"

        executor = stack.start_executor(
            tmp_path / "executor",
            port=executor_port,
            sdk_urls=[f"{backend.url}/api/inngest"],
            extra_args=["--retry-interval", "0.2"],
        )
        stack.sync_app(backend.url)
        running.executor = executor
        job = running.wait(job_id, timeout=60)
        assert job["status"] == "succeeded", job
    finally:
        backend.stop()
        if executor is not None:
            executor.stop()


def test_executor_killed_mid_run_resumes_without_rerunning_steps(
    tmp_path: Path,
) -> None:
    running = start_stack(tmp_path)
    try:
        text = (CORPUS / "pep-0008.rst").read_text(encoding="utf-8")
        big = "\n\n".join([text] * 8)
        job_id = running.submit(big, title="long")

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = running.job(job_id)
            if job["progress"]["done"] >= 4:
                break
            time.sleep(0.02)
        assert job["status"] == "running", job
        assert job["progress"]["done"] < job["progress"]["total"]

        # What the executor says had finished just before the crash: each of
        # these has its result stored and must not run again.
        [run] = running.runs_of(job_id)
        steps = running.executor_get(f"/v1/runs/{run['run_id']}/steps")
        finished = {s["name"] for s in steps if s["status"] == "Completed"}
        running.executor.kill()
        assert finished

        running.executor = stack.start_executor(
            tmp_path / "executor",
            sdk_urls=[f"{running.backend.url}/api/inngest"],
            extra_args=["--retry-interval", "0.2"],
            port=int(running.executor.url.rsplit(":", 1)[1]),
        )
        job = running.wait(job_id, timeout=120)
        assert job["status"] == "succeeded", job

        log = Path(running.backend.log_path).read_text()
        done = Counter(re.findall(rf"job {job_id} step (\S+) done in", log))
        assert len(done) == job["progress"]["total"]
        # A step in flight at the crash may run again (at least once); one
        # whose result the executor had stored must not.
        rerun = {name for name, count in done.items() if count > 1}
        assert not rerun & finished, rerun & finished
    finally:
        running.backend.stop()
        running.executor.stop()


def test_event_that_arrived_before_the_sync_is_sent_again(tmp_path: Path) -> None:
    executor = stack.start_executor(
        tmp_path / "executor", extra_args=["--retry-interval", "0.2"]
    )
    backend = stack.start_backend(
        executor_url=executor.url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
        log_path=tmp_path / "backend.log",
    )
    try:
        running = Stack(executor=executor, backend=backend, home=tmp_path)
        job_id = running.submit("Sent before the executor knew any function.")
        time.sleep(1)
        job = running.job(job_id)
        assert job["status"] == "queued"
        assert running.runs_of(job_id) == []

        stack.sync_app(backend.url)
        assert running.wait(job_id, timeout=60)["status"] == "succeeded"
        assert len(running.runs_of(job_id)) == 1
    finally:
        backend.stop()
        executor.stop()
