"""An app that is down for a while (a backend restarting) loses no run.

Digest's executor differs from the official dev server here on purpose: a
call that cannot connect never reached the app, so it spends no attempt;
the run waits, shown as unreachable, until the app answers again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from devserver.testing import event_runs, start_app, wait_for_run, wait_until
from tests.conformance.conftest import HERE, App, Executor, serve_app


def _restart_on(app: App, root: Path) -> None:
    app.process = start_app(
        "apps.restarting:app",
        cwd=HERE,
        log_dir=root,
        port=app.process.port,
        env={
            "EXECUTOR_URL": app.executor.url,
            "MARKER_DIR": str(app.markers),
            "PYTHONPATH": str(HERE),
        },
    )


def test_run_waits_for_an_app_that_is_down(
    own_executor: Callable[..., Executor], tmp_path: Path, key: Callable[[], str]
) -> None:
    executor = own_executor()
    app = serve_app("restarting", executor, tmp_path)
    try:
        app.process.stop()
        k = key()
        event_id = app.send("restarting/once", {"key": k})

        def shown_unreachable() -> bool:
            apps = httpx.get(f"{executor.url}/v1/apps", timeout=5).json()["data"]
            return any(a["reachable"] is False for a in apps)

        wait_until(shown_unreachable, 10, "the app to show as unreachable")
        time.sleep(2)  # several calls refused: with retries=0 none may count
        (queued,) = event_runs(executor.url, event_id)
        assert queued["status"] in ("Queued", "Running")

        _restart_on(app, tmp_path)
        run = wait_for_run(executor.url, event_id, timeout=20)
        assert (run["status"], run["output"]) == ("Completed", "done")
        assert app.marks(k, "work") == ["ran"]
    finally:
        app.process.stop()
