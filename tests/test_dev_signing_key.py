"""`digest dev` with a dev signing key in the environment: its executor is
a local dev server, so it runs unsigned like the backend beside it, and a
job goes through (a signing key reaching the executor alone used to put it
in cloud mode: every sync refused, every job queued for ever)."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from pathlib import Path

import httpx

from digest.stack import Service, free_port
from tests.conftest import CORPUS, Stack
from tests.tunnel_helpers import ROOT, DigestProcess


def test_dev_with_a_signing_key_runs_a_job_with_an_unsigned_executor(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / ".env.dev", folder / ".env.dev")
    home = tmp_path / "home"
    port, executor_port = free_port(), free_port()
    key = "signkey-test-" + secrets.token_hex(32)
    running = DigestProcess(
        folder,
        ["dev", "--port", str(port), "--executor-port", str(executor_port)],
        {
            "DIGEST_HOME": str(home),
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
            "JOB_RETENTION_CRON": "0 0 1 1 *",
            "INNGEST_SIGNING_KEY": key,
            "INNGEST_SIGNING_KEY_FALLBACK": "signkey-test-" + secrets.token_hex(32),
        },
        "dev",
    )
    try:
        said = running.wait_for("Application startup complete")
        assert "INNGEST_SIGNING_KEY is set: digest dev's executor is a local" in said
        executor_url = f"http://127.0.0.1:{executor_port}"
        # A dev server: its REST API needs no bearer, and the app is synced.
        deadline = time.monotonic() + 60
        apps: list[object] = []
        while time.monotonic() < deadline and not apps:
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{executor_url}/v1/apps", timeout=10)
                assert answer.status_code == 200, answer.text
                apps = answer.json()["data"]
            time.sleep(0.2)
        assert apps, (home / "executor.log").read_text()
        backend = Service(
            "backend", f"http://127.0.0.1:{port}", running.process, running.output
        )
        executor = Service(
            "executor", executor_url, running.process, home / "executor.log"
        )
        stack = Stack(executor=executor, backend=backend, home=home)
        text = (CORPUS / "pep-0020.rst").read_text()
        job = stack.wait(stack.submit(text))
        assert job["status"] == "succeeded", job
        assert "Sync rejected" not in running.text()
        assert running.interrupt() == 0
    finally:
        running.stop()
    assert key[-64:] not in running.text()
