"""Test support: run the executor and SDK apps as real subprocesses.

Shipped with the package so that any test suite of the project can start
the same stack: ``start_executor`` and ``start_app`` launch processes on
free loopback ports and wait until they answer; ``send_event`` and
``wait_for_runs`` drive and observe runs through the public HTTP API.
Everything is synchronous and every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
# Skipped: a run a limit dropped, recorded already ended (protocol 6.11).
ENDED = frozenset({"Completed", "Failed", "Cancelled", "Skipped"})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Call ``probe`` until it returns something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class ServiceProcess:
    """A subprocess serving HTTP on ``url``; its output goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    url: str
    port: int
    log_path: Path
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as in a crash."""
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )


def _launch(
    args: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None,
    cwd: Path | None,
) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, **(env or {})}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(args), stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd
        )


def _wait_http(service: ServiceProcess, path: str, timeout: float) -> None:
    def ready() -> bool:
        if not service.alive():
            raise RuntimeError(
                f"process {service.pid} exited early:\n{service.log()[-4000:]}"
            )
        try:
            httpx.get(service.url + path, timeout=1.0)
        except httpx.HTTPError:
            return False
        return True

    wait_until(ready, timeout, f"{service.url}{path} to answer")


def start_executor(
    data_dir: Path,
    sdk_urls: Sequence[str] = (),
    port: int | None = None,
    *,
    retry_interval: float | None = 0.2,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
) -> ServiceProcess:
    """Run ``python -m devserver`` on ``data_dir`` and wait for ``/health``."""
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "devserver",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    for url in sdk_urls:
        args += ["-u", url]
    if retry_interval is not None:
        args += ["--retry-interval", str(retry_interval)]
    args += list(extra_args)
    log_path = data_dir / f"executor-{port}.log"
    service = ServiceProcess(
        _launch(args, log_path, env, None), f"http://127.0.0.1:{port}", port, log_path
    )
    try:
        _wait_http(service, "/health", timeout)
    except BaseException:
        service.kill()
        raise
    return service


def start_app(
    target: str,
    *,
    port: int | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_dir: Path,
    serve_path: str = "/api/inngest",
    timeout: float = 20.0,
) -> ServiceProcess:
    """Run ``uvicorn target`` (``module:app``) and wait for its serve endpoint.

    ``extras["serve_url"]`` is the URL to give the executor with ``-u``.
    """
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log_path = log_dir / f"app-{port}.log"
    url = f"http://127.0.0.1:{port}"
    service = ServiceProcess(_launch(args, log_path, env, cwd), url, port, log_path)
    service.extras["serve_url"] = url + serve_path
    try:
        _wait_http(service, serve_path, timeout)
    except BaseException:
        service.kill()
        raise
    return service


def start_app_and_executor(
    target: str,
    *,
    cwd: Path,
    root: Path,
    functions: Sequence[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[ServiceProcess, ServiceProcess]:
    """An SDK app (``module:app`` in ``cwd``) and an executor syncing it, on
    free ports, once every function in ``functions`` is registered.

    The app reads the executor's origin from ``EXECUTOR_URL``; the
    executor's state lives in ``root / "executor"``. Returns (app, executor).
    """
    port = free_port()
    app = start_app(
        target,
        cwd=cwd,
        log_dir=root,
        env={**(env or {}), "EXECUTOR_URL": f"http://127.0.0.1:{port}"},
    )
    try:
        executor = start_executor(
            root / "executor", [app.extras["serve_url"]], port=port
        )
    except BaseException:
        app.stop()
        raise
    try:
        wait_for_functions(executor.url, functions, timeout=timeout)
    except BaseException:
        executor.stop()
        app.stop()
        raise
    return app, executor


def registered_functions(executor_url: str) -> list[str]:
    """Ids of the functions the executor currently runs (``GET /dev``)."""
    body = httpx.get(f"{executor_url}/dev", timeout=5.0).json()
    return [f["slug"] for f in body["functions"]]


def wait_for_functions(
    executor_url: str, function_ids: Sequence[str], timeout: float = 20.0
) -> None:
    """Wait until every given function id is registered (the app synced)."""
    wanted = set(function_ids)
    wait_until(
        lambda: wanted <= set(registered_functions(executor_url)),
        timeout,
        f"functions {sorted(wanted)} to be registered",
    )


def send_event(
    executor_url: str,
    name: str,
    data: Mapping[str, Any] | None = None,
    *,
    event_id: str | None = None,
    event_key: str = "test",
) -> str:
    """Send one event; return its internal id (for ``/v1/events/{id}/runs``)."""
    event: dict[str, Any] = {"name": name, "data": dict(data or {})}
    if event_id is not None:
        event["id"] = event_id
    response = httpx.post(f"{executor_url}/e/{event_key}", json=[event], timeout=10)
    response.raise_for_status()
    ids: list[str] = response.json()["ids"]
    return ids[0]


def get_json(url: str) -> Any:
    response = httpx.get(url, timeout=10.0)
    response.raise_for_status()
    return response.json()["data"]


def event_runs(executor_url: str, event_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = get_json(f"{executor_url}/v1/events/{event_id}/runs")
    return runs


def wait_for_runs(
    executor_url: str,
    event_id: str,
    *,
    count: int = 1,
    timeout: float = 20.0,
) -> list[dict[str, Any]]:
    """Wait until ``count`` runs of the event exist and all have ended."""

    def ended() -> list[dict[str, Any]] | None:
        runs = event_runs(executor_url, event_id)
        if len(runs) >= count and all(r["status"] in ENDED for r in runs):
            return runs
        return None

    return wait_until(ended, timeout, f"{count} run(s) of event {event_id} to end")


def wait_for_run(
    executor_url: str, event_id: str, timeout: float = 20.0
) -> dict[str, Any]:
    """The single run started by an event, once it has ended."""
    return wait_for_runs(executor_url, event_id, count=1, timeout=timeout)[0]


def run_steps(executor_url: str, run_id: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = get_json(f"{executor_url}/v1/runs/{run_id}/steps")
    return steps
