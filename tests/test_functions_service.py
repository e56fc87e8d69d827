"""The step functions deployed on their own: the backend API in one process
(SERVE_FUNCTIONS=false), the functions service in another, one database."""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import stack
from tests.conftest import CORPUS, Stack

RETRY = ["--retry-interval", "0.2"]


@dataclass
class SplitStack(Stack):
    """A Stack whose functions run in `functions`, not in `backend`."""

    functions: stack.Service | None = None

    def stop(self) -> None:
        for service in (self.backend, self.functions, self.executor):
            if service is not None:
                service.stop()


def _database(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'digest.db'}"


def _start_split(home: Path, *, sync_with_u: bool = True) -> SplitStack:
    """Executor, functions service and backend API (SERVE_FUNCTIONS=false).

    With `sync_with_u`, the executor is started with `-u` on the functions
    service's /api/inngest (and re-syncs it on its own); otherwise it is
    synced once here.
    """
    functions_port = stack.free_port()
    functions_url = f"http://{stack.LOOPBACK}:{functions_port}"
    executor = stack.start_executor(
        home / "executor",
        sdk_urls=[f"{functions_url}/api/inngest"] if sync_with_u else [],
        extra_args=RETRY,
    )
    running = SplitStack(executor=executor, backend=None, home=home)  # type: ignore[arg-type]
    try:
        # One after the other: in dev each migrates the SQLite file on start.
        running.functions = stack.start_functions_service(
            executor_url=executor.url,
            database_url=_database(home),
            log_path=home / "functions.log",
            port=functions_port,
        )
        running.backend = stack.start_backend(
            executor_url=executor.url,
            database_url=_database(home),
            log_path=home / "backend.log",
            env={"SERVE_FUNCTIONS": "false"},
        )
        stack.sync_app(running.functions.url)
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture
def split(tmp_path: Path) -> Iterator[SplitStack]:
    running = _start_split(tmp_path)
    yield running
    running.stop()


def _steps_done(log_path: Path, job_id: str) -> Counter[str]:
    text = log_path.read_text(errors="replace")
    return Counter(re.findall(rf"job {job_id} step (\S+) done in", text))


def _app(executor: stack.Service) -> dict[str, Any]:
    apps = httpx.get(f"{executor.url}/v1/apps", timeout=10).json()["data"]
    [app] = [a for a in apps if a["name"] == "digest"]
    return dict(app)


def test_job_runs_in_the_functions_service(split: SplitStack) -> None:
    assert split.functions is not None
    text = (CORPUS / "pep-0257.rst").read_text(encoding="utf-8")
    job_id = split.submit(text, max_sentences=4)
    job = split.wait(job_id)
    assert job["status"] == "succeeded", job
    assert len(job["sentences"]) == 4
    assert job["progress"]["done"] == job["progress"]["total"]
    assert len(split.runs_of(job_id)) == 1

    # Every step ran in the functions service, none in the backend.
    done = _steps_done(split.functions.log_path, job_id)
    assert sum(done.values()) == job["progress"]["total"]
    assert _steps_done(split.backend.log_path, job_id) == Counter()
    assert _app(split.executor)["url"] == f"{split.functions.url}/api/inngest"


def test_backend_without_functions_has_no_serve_endpoint(split: SplitStack) -> None:
    assert split.functions is not None
    for method in ("GET", "PUT", "POST"):
        answer = httpx.request(method, f"{split.backend.url}/api/inngest", timeout=10)
        assert answer.status_code == 404, (method, answer.text)
    # The functions service serves the functions, health, and nothing else.
    introspection = httpx.get(f"{split.functions.url}/api/inngest", timeout=10)
    assert introspection.status_code == 200
    # generate-summary and cleanup-expired-jobs
    assert introspection.json()["function_count"] == 2
    assert httpx.get(f"{split.functions.url}/healthz", timeout=10).json() == {
        "status": "ok"
    }
    ready = httpx.get(f"{split.functions.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "executor": "ok"}
    assert httpx.get(f"{split.functions.url}/api/summaries").status_code == 404
    assert httpx.get(f"{split.functions.url}/").status_code == 404


def test_functions_service_killed_mid_run_resumes(split: SplitStack) -> None:
    assert split.functions is not None
    text = (CORPUS / "pep-0008.rst").read_text(encoding="utf-8")
    big = "\n\n".join([text] * 8)
    job_id = split.submit(big, title="long")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = split.job(job_id)
        if job["progress"]["done"] >= 4:
            break
        time.sleep(0.02)
    assert job["status"] == "running", job
    assert job["progress"]["done"] < job["progress"]["total"]

    [run] = split.runs_of(job_id)
    steps = split.executor_get(f"/v1/runs/{run['run_id']}/steps")
    finished = {s["name"] for s in steps if s["status"] == "Completed"}
    port = int(split.functions.url.rsplit(":", 1)[1])
    split.functions.kill()
    assert finished

    # While it is down the backend still answers and the job waits.
    assert split.job(job_id)["status"] == "running"
    time.sleep(1)
    split.functions = stack.start_functions_service(
        executor_url=split.executor.url,
        database_url=_database(split.home),
        log_path=split.home / "functions.log",
        port=port,
    )
    job = split.wait(job_id, timeout=120)
    assert job["status"] == "succeeded", job
    assert len(split.runs_of(job_id)) == 1

    done = _steps_done(split.functions.log_path, job_id)
    assert len(done) == job["progress"]["total"]
    # A step in flight at the crash may run again; a finished one must not.
    rerun = {name for name, count in done.items() if count > 1}
    assert not rerun & finished, rerun & finished


def test_second_url_replaces_the_first_and_events_run_once(tmp_path: Path) -> None:
    running = _start_split(tmp_path, sync_with_u=False)
    second: stack.Service | None = None
    try:
        first = running.functions
        assert first is not None
        assert _app(running.executor)["url"] == f"{first.url}/api/inngest"

        # The same app id synced from a second URL: it replaces the first.
        second = stack.start_functions_service(
            executor_url=running.executor.url,
            database_url=_database(tmp_path),
            log_path=tmp_path / "functions-2.log",
        )
        stack.sync_app(second.url)
        app = _app(running.executor)
        assert app["url"] == f"{second.url}/api/inngest"
        assert sorted(f["slug"] for f in app["functions"]) == [
            "digest-cleanup-expired-jobs",
            "digest-generate-summary",
            "digest-generate-summary-failure",
        ]
        assert (
            f"app digest moved from {first.url}/api/inngest to "
            f"{second.url}/api/inngest" in running.executor.log_path.read_text()
        )

        job_id = running.submit("Two services, one app id. This runs once.")
        job = running.wait(job_id)
        assert job["status"] == "succeeded", job
        time.sleep(1)  # time for a second run, were there one
        assert len(running.runs_of(job_id)) == 1
        assert _steps_done(first.log_path, job_id) == Counter()
        done = _steps_done(second.log_path, job_id)
        assert sum(done.values()) == job["progress"]["total"]
        assert set(done.values()) == {1}
    finally:
        if second is not None:
            second.stop()
        running.stop()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_functions_serve_stops_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    service = stack.start_functions_service(
        executor_url=f"http://{stack.LOOPBACK}:{stack.free_port()}",
        database_url=_database(tmp_path),
        log_path=tmp_path / "functions.log",
    )
    try:
        service.process.send_signal(signum)
        # As with `digest serve`: uvicorn shuts down, then re-raises SIGTERM.
        assert service.process.wait(timeout=20) in (0, -signum)
    finally:
        service.stop()
    output = service.log_path.read_text()
    assert "functions service stopped" in output
    assert "Traceback" not in output


async def test_functions_app_is_importable_for_any_asgi_server() -> None:
    from functions.app import app

    # Without its lifespan (no store opened): the routes only.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://f") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/api/inngest")).status_code == 200
        assert (await http.get("/api/summaries")).status_code == 404
