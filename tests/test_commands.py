"""The server commands stop cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from digest import stack


def _start(args: list[str], tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DIGEST_HOME": str(tmp_path / "home"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "digest.cli", *args],
        stdout=(tmp_path / "out.log").open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def _wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the command exited before it was ready"
        if stack.answers(url):
            return
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_stops_cleanly(tmp_path: Path, signum: signal.Signals) -> None:
    port = stack.free_port()
    process = _start(["serve", "--port", str(port)], tmp_path)
    _wait_for(f"http://127.0.0.1:{port}/healthz", process)
    process.send_signal(signum)
    process.wait(timeout=20)
    output = (tmp_path / "out.log").read_text()
    assert "backend stopped" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_stops_backend_and_executor(tmp_path: Path, signum: signal.Signals) -> None:
    port, executor_port = stack.free_port(), stack.free_port()
    process = _start(
        ["dev", "--port", str(port), "--executor-port", str(executor_port)], tmp_path
    )
    _wait_for(f"http://127.0.0.1:{port}/healthz", process)
    _wait_for(f"http://127.0.0.1:{executor_port}/health", process)
    # The executor syncs the backend on its own, and a job goes through.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        job_id = http.post(
            "/api/summaries", json={"text": "Digest runs this job in dev mode."}
        ).json()["id"]
        deadline = time.monotonic() + 60
        while http.get(f"/api/summaries/{job_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the job never succeeded"
            time.sleep(0.2)

    process.send_signal(signum)
    assert process.wait(timeout=30) == 0
    assert not stack.answers(f"http://127.0.0.1:{executor_port}/health")
    output = (tmp_path / "out.log").read_text()
    assert "Traceback" not in output
