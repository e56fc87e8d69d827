"""App discovery and re-sync: `-u` URLs, syncs requested by the app side,
`/v1/apps`, changed configuration, and a serve path with a trailing slash."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from devserver.testing import free_port, start_app, wait_for_run, wait_until
from tests.conformance.conftest import HERE, App, Executor, serve_app


def _start_appsync(
    executor: Executor, root: Path, port: int, env: dict[str, str] | None = None
) -> App:
    env = env or {}
    process = start_app(
        "apps.appsync:app",
        cwd=HERE,
        log_dir=root,
        port=port,
        serve_path=env.get("SERVE_PATH", "/api/inngest"),
        env={
            "EXECUTOR_URL": executor.url,
            "MARKER_DIR": str(root / "markers"),
            "PYTHONPATH": str(HERE),
            **env,
        },
    )
    (root / "markers").mkdir(parents=True, exist_ok=True)
    return App(process, executor, root / "markers", "appsync")


def _listed(executor: Executor) -> dict[str, Any] | None:
    apps = httpx.get(f"{executor.url}/v1/apps").json()["data"]
    return next((a for a in apps if a["name"] == "appsync"), None)


def test_u_url_is_synced_and_resynced_with_new_configuration(
    own_executor: Callable[..., Executor], tmp_path: Path, key: Callable[[], str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/inngest"
    executor = own_executor("-u", url, "--poll-interval", "1")
    app = _start_appsync(executor, tmp_path / "v1", port)
    listed = wait_until(lambda: _listed(executor), 15, "the -u app to sync")
    assert listed["url"] == url
    assert listed["sdk_language"] == "py"
    assert listed["sdk_version"].startswith("0.5.")
    assert listed["framework"] == "fast_api"
    assert [f["slug"] for f in listed["functions"]] == ["appsync-napper"]
    first_sync = listed["last_synced_at"]
    # Unchanged, the app is still re-registered on every poll.
    wait_until(
        lambda: _listed(executor)["last_synced_at"] > first_sync,  # type: ignore[index]
        10,
        "a re-sync",
    )

    # Without a cancel event the run sleeps to its end.
    k = key()
    before = app.send("appsync/nap", {"key": k})
    wait_until(lambda: app.marks(k, "begin") or None, 10, "the run to begin")
    app.send("appsync/stop", {})
    assert wait_for_run(executor.url, before)["status"] == "Completed"

    # The app comes back with `cancel` added: the poll re-syncs it and new
    # runs get the new configuration.
    app.process.stop()
    app = _start_appsync(executor, tmp_path / "v2", port, {"WITH_CANCEL": "1"})
    wait_until(
        lambda: "appsync/stop" in str(_listed(executor)),
        15,
        "the changed app to re-sync",
    )
    k = key()
    after = app.send("appsync/nap", {"key": k})
    wait_until(lambda: app.marks(k, "begin") or None, 10, "the run to begin")
    app.send("appsync/stop", {})
    assert wait_for_run(executor.url, after)["status"] == "Cancelled"
    app.process.stop()


def test_sync_requested_from_the_app_side(
    executor: Executor, tmp_path: Path, key: Callable[[], str]
) -> None:
    # serve_app PUTs the app's own endpoint, as an app's start-up script
    # would; the SDK then registers itself with the executor.
    app = serve_app("appsync", executor, tmp_path)
    try:
        listed = _listed(executor)
        assert listed is not None
        assert listed["url"] == app.serve_url
        k = key()
        run = wait_for_run(executor.url, app.send("appsync/nap", {"key": k}))
        assert run["output"] == "rested"
    finally:
        app.process.stop()


def test_serve_path_with_trailing_slash_is_called_exactly(
    executor: Executor, tmp_path: Path, key: Callable[[], str]
) -> None:
    port = free_port()
    app = _start_appsync(executor, tmp_path, port, {"SERVE_PATH": "/api/inngest/"})
    try:
        assert app.serve_url.endswith("/api/inngest/")
        app.sync()
        listed = _listed(executor)
        assert listed is not None
        assert listed["url"] == app.serve_url
        k = key()
        started = time.monotonic()
        run = wait_for_run(executor.url, app.send("appsync/nap", {"key": k}))
        # Every call reached the SDK directly: a redirect would have failed
        # the attempts and left a last_error behind.
        assert run["output"] == "rested"
        assert "last_error" not in run
        assert time.monotonic() - started < 15
    finally:
        app.process.stop()
