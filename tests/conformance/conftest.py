"""The conformance suite: real SDK apps against an executor at a URL.

By default every module runs against Digest's embedded executor, started
once for the session. With `DIGEST_CONFORMANCE_URL` set (for example to an
official Inngest dev server started with `--retry-interval 1`), the same
tests run against that executor instead; tests that must restart or kill
the executor, or start it with special flags, use `own_executor`, which
skips them there.

Each test module serves its own app (a module under `apps/`, with its own
app id) so modules never see each other's functions. Apps learn where the
executor is from `EXECUTOR_URL` and where to leave marker files from
`MARKER_DIR`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from devserver.testing import (
    ServiceProcess,
    free_port,
    send_event,
    start_app,
    start_executor,
    wait_until,
)

HERE = Path(__file__).parent
EXTERNAL_URL = os.environ.get("DIGEST_CONFORMANCE_URL", "").rstrip("/")


@dataclass
class Executor:
    url: str
    process: ServiceProcess | None  # None when it is an external executor
    data_dir: Path | None

    def restart(self, *extra_args: str) -> None:
        """Start the embedded executor again on the same port and data."""
        assert self.process is not None
        assert self.data_dir is not None
        self.process = start_executor(
            self.data_dir, port=self.process.port, extra_args=extra_args
        )


@dataclass
class App:
    """An SDK app served by uvicorn, synced with an executor."""

    process: ServiceProcess
    executor: Executor
    markers: Path
    app_id: str

    @property
    def serve_url(self) -> str:
        url: str = self.process.extras["serve_url"]
        return url

    def sync(self) -> None:
        """PUT the serve endpoint, as a dev server does; fail if refused."""
        answer = httpx.put(
            self.serve_url,
            json={"url": self.serve_url},
            headers={"x-inngest-server-kind": "dev"},
            timeout=30,
        )
        body = answer.json()
        assert answer.status_code == 200, body
        assert "error" not in body, body

    def send(self, name: str, data: dict[str, Any], **fields: Any) -> str:
        """Send one event; return the executor's internal id for it."""
        return send_event(self.executor.url, name, data, **fields)

    def marks(self, key: str, step: str) -> list[str]:
        path = self.markers / f"{key}.{step}"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="session")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executor]:
    if EXTERNAL_URL:
        yield Executor(url=EXTERNAL_URL, process=None, data_dir=None)
        return
    data_dir = tmp_path_factory.mktemp("conformance-executor")
    process = start_executor(data_dir, retry_interval=0.2)
    yield Executor(url=process.url, process=process, data_dir=data_dir)
    process.stop()


@pytest.fixture
def own_executor(tmp_path: Path) -> Iterator[Callable[..., Executor]]:
    """Start an embedded executor for one test (with extra flags)."""
    if EXTERNAL_URL:
        pytest.skip("needs an executor this test can start, stop and kill")
    started: list[Executor] = []

    def start(*extra_args: str, retry_interval: float | None = 0.2) -> Executor:
        data_dir = tmp_path / f"executor-{len(started)}"
        process = start_executor(
            data_dir, retry_interval=retry_interval, extra_args=extra_args
        )
        started.append(Executor(url=process.url, process=process, data_dir=data_dir))
        return started[-1]

    yield start
    for item in started:
        if item.process is not None:
            item.process.stop()


def serve_app(
    module: str, executor: Executor, root: Path, env: dict[str, str] | None = None
) -> App:
    """Serve `apps/<module>.py` (its `app`), sync it, and wait until it is known."""
    markers = root / "markers"
    markers.mkdir(parents=True, exist_ok=True)
    process = start_app(
        f"apps.{module}:app",
        cwd=HERE,
        log_dir=root,
        port=free_port(),
        env={
            "EXECUTOR_URL": executor.url,
            "MARKER_DIR": str(markers),
            "PYTHONPATH": str(HERE),
            **(env or {}),
        },
    )
    app = App(process=process, executor=executor, markers=markers, app_id=module)
    wait_until(lambda: _synced(app), 30, f"app {module} to sync")
    return app


def _synced(app: App) -> bool:
    try:
        app.sync()
    except (AssertionError, httpx.HTTPError):
        return False
    return True


@pytest.fixture
def key() -> Callable[[], str]:
    """Unique values for `data.key`, so marker files never collide."""
    return lambda: uuid.uuid4().hex[:12]
