"""Fixtures that run Digest for real: processes, loopback HTTP, SQLite files."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from digest import stack
from tests.databases import DATABASE_OF, database_for

CORPUS = Path(__file__).parent / "data" / "corpus"


def normalised(text: str) -> str:
    """Text without inline-markup characters and with single spaces, so that
    a summary sentence can be found in the document it came from."""
    text = re.sub(r"[`*_\\]", "", text)
    return re.sub(r"\s+", " ", text).strip()


TERMINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Stack:
    executor: stack.Service
    backend: stack.Service
    home: Path
    _token: str | None = field(default=None, repr=False)

    @property
    def token(self) -> str:
        """A dev token for the user `tester`, fetched once per stack."""
        if self._token is None:
            self._token = stack.dev_token(self.backend.url, "tester")
        return self._token

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.backend.url, timeout=30, headers=self.auth)

    def submit(self, text: str, **fields: Any) -> str:
        with self.api as http:
            answer = http.post("/api/summaries", json={"text": text, **fields})
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        with self.api as http:
            answer = http.get(f"/api/summaries/{job_id}")
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        return job

    def wait(self, job_id: str, *, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in TERMINAL:
                return job
            time.sleep(0.1)
        raise AssertionError(
            f"job {job_id} did not end within {timeout}s: {self.job(job_id)}\n"
            f"--- backend ---\n{self.backend.log_tail()}\n"
            f"--- executor ---\n{self.executor.log_tail()}"
        )

    def executor_get(self, path: str) -> Any:
        answer = httpx.get(self.executor.url + path, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    def runs_of(self, job_id: str) -> list[dict[str, Any]]:
        """The executor's runs for the job's event (the event id is the job id)."""
        events = self.executor_get("/v1/events?limit=1000")
        internal = [e["internal_id"] for e in events if e.get("id") == job_id]
        runs: list[dict[str, Any]] = []
        for event_id in internal:
            runs += self.executor_get(f"/v1/events/{event_id}/runs")
        return runs


def start_stack(
    home: Path,
    *,
    backend_env: dict[str, str] | None = None,
    retry_interval: float = 0.2,
    database_url: str | None = None,
) -> Stack:
    started = stack.start_local_stack(
        home,
        retry_interval=retry_interval,
        backend_env=backend_env,
        database_url=database_url,
    )
    return Stack(executor=started.executor, backend=started.backend, home=home)


@pytest.fixture(scope="module")
def digest_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """Executor and backend, shared by the tests of one module."""
    home = tmp_path_factory.mktemp("stack")
    with database_for(request, home) as database_url:
        running = start_stack(home, database_url=database_url)
        DATABASE_OF[running.backend.url] = database_url
        yield running
        running.backend.stop()
        running.executor.stop()


@pytest.fixture(scope="module")
def lone_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack.Service]:
    """A backend whose executor does not answer: events stay unsent."""
    home = tmp_path_factory.mktemp("lone")
    with database_for(request, home) as database_url:
        backend = stack.start_backend(
            executor_url=f"http://{stack.LOOPBACK}:{stack.free_port()}",
            database_url=database_url,
            log_path=home / "backend.log",
        )
        DATABASE_OF[backend.url] = database_url
        yield backend
        backend.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty job-store database: a SQLite file, then a PostgreSQL database
    of the test's own (see tests/pg.py), so a test using it runs on both."""
    with database_for(request, tmp_path) as url:
        yield url
