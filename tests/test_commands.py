"""The server commands stop cleanly on SIGINT and SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from digest import stack
from tests.conftest import CORPUS


@contextlib.contextmanager
def _started(args: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`digest ARGS` in a child process, ended whatever the test does."""
    env = {
        **os.environ,
        "DIGEST_HOME": str(tmp_path / "home"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
    }
    with (tmp_path / "out.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                # SIGTERM, so that `digest dev` also stops its executor.
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


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
    with _started(["serve", "--port", str(port)], tmp_path) as process:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        process.send_signal(signum)
        process.wait(timeout=20)
    output = (tmp_path / "out.log").read_text()
    assert "backend stopped" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_stops_backend_and_executor(tmp_path: Path, signum: signal.Signals) -> None:
    port, executor_port = stack.free_port(), stack.free_port()
    args = ["dev", "--port", str(port), "--executor-port", str(executor_port)]
    with _started(args, tmp_path) as process:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        _wait_for(f"http://127.0.0.1:{executor_port}/health", process)
        # The executor syncs the backend on its own, and a job goes through.
        base_url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {stack.dev_token(base_url)}"}
        with httpx.Client(base_url=base_url, timeout=10, headers=auth) as http:
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


def test_dev_refuses_an_executor_port_already_served(tmp_path: Path) -> None:
    # Another executor on the port would answer in place of dev's own.
    other = stack.start_executor(tmp_path / "other", port=stack.free_port())
    try:
        executor_port = int(other.url.rsplit(":", 1)[1])
        port = stack.free_port()
        args = ["dev", "--port", str(port), "--executor-port", str(executor_port)]
        with _started(args, tmp_path) as process:
            assert process.wait(timeout=60) == 2
        assert not stack.answers(f"http://127.0.0.1:{port}/healthz")
        output = (tmp_path / "out.log").read_text()
        assert output.strip().splitlines() == [
            f"port {executor_port} on 127.0.0.1 is already in use (by a service "
            "left from an earlier run?); stop what holds it or choose another "
            "port with --executor-port"
        ]
    finally:
        other.stop()


def _running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie left unreaped is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_dev_killed_takes_its_executor_with_it(tmp_path: Path) -> None:
    port, executor_port = stack.free_port(), stack.free_port()
    args = ["dev", "--port", str(port), "--executor-port", str(executor_port)]
    executor_pid = None
    try:
        with _started(args, tmp_path) as process:
            _wait_for(f"http://127.0.0.1:{executor_port}/health", process)
            log = (tmp_path / "home" / "executor.log").read_text()
            found = re.search(r"Started server process \[(\d+)\]", log)
            assert found, log
            executor_pid = int(found.group(1))
            assert _running(executor_pid)
            # As the OOM killer or `kill -9` would: no handler runs.
            process.kill()
            process.wait(timeout=10)
            deadline = time.monotonic() + 15
            while _running(executor_pid):
                assert time.monotonic() < deadline, "the executor outlived digest dev"
                time.sleep(0.1)
        assert not stack.answers(f"http://127.0.0.1:{executor_port}/health")
    finally:
        if executor_pid is not None and _running(executor_pid):
            cmdline = Path(f"/proc/{executor_pid}/cmdline").read_bytes()
            if b"devserver" in cmdline:
                os.kill(executor_pid, signal.SIGKILL)


def _executor_pids(log_path: Path) -> list[int]:
    """The PIDs of the executors that started with this log, in order."""
    log = log_path.read_text(errors="replace")
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_dev_starts_its_executor_again_when_it_dies(tmp_path: Path) -> None:
    port, executor_port = stack.free_port(), stack.free_port()
    args = ["dev", "--port", str(port), "--executor-port", str(executor_port)]
    executor_log = tmp_path / "home" / "executor.log"
    health = f"http://127.0.0.1:{executor_port}/health"
    pids: list[int] = []
    try:
        with _started(args, tmp_path) as process:
            _wait_for(f"http://127.0.0.1:{port}/healthz", process)
            _wait_for(health, process)
            [first] = pids = _executor_pids(executor_log)
            base_url = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {stack.dev_token(base_url)}"}
            text = (CORPUS / "pep-0008.rst").read_text(encoding="utf-8")
            with httpx.Client(base_url=base_url, timeout=10, headers=auth) as http:
                job_id = http.post(
                    "/api/summaries", json={"text": "\n\n".join([text] * 4)}
                ).json()["id"]
                deadline = time.monotonic() + 60
                while (job := http.get(f"/api/summaries/{job_id}").json())["progress"][
                    "done"
                ] < 2:
                    assert time.monotonic() < deadline, job
                    time.sleep(0.05)
                assert job["status"] == "running", job
                assert job["progress"]["done"] < job["progress"]["total"], job

                # As a crash or the OOM killer would: no handler runs.
                os.kill(first, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while len(pids := _executor_pids(executor_log)) < 2:
                    assert time.monotonic() < deadline, "the executor never came back"
                    time.sleep(0.1)
                _wait_for(health, process)
                second = pids[-1]
                assert second != first
                assert _running(second)
                assert not _running(first)

                # It found the run in its data dir and finished it.
                deadline = time.monotonic() + 120
                while (job := http.get(f"/api/summaries/{job_id}").json())[
                    "status"
                ] != "succeeded":
                    assert job["status"] == "running", job
                    assert time.monotonic() < deadline, job
                    time.sleep(0.2)

            output = (tmp_path / "out.log").read_text()
            assert (
                f"executor (pid {first}) exited (signal SIGKILL); starting it again "
                f"on http://127.0.0.1:{executor_port} (log: {executor_log})"
            ) in output, output
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
            assert not _running(second)
            assert not stack.answers(health)
        assert _executor_pids(executor_log) == [first, second]
        assert "Traceback" not in (tmp_path / "out.log").read_text()
    finally:
        for pid in pids:
            if (
                _running(pid)
                and b"devserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
def test_dev_stops_when_its_executor_keeps_dying(tmp_path: Path) -> None:
    port, executor_port = stack.free_port(), stack.free_port()
    args = ["dev", "--port", str(port), "--executor-port", str(executor_port)]
    executor_log = tmp_path / "home" / "executor.log"
    killed: list[int] = []
    with _started(args, tmp_path) as process:
        _wait_for(f"http://127.0.0.1:{port}/healthz", process)
        deadline = time.monotonic() + 60
        # Three restarts within a minute, then no fourth.
        while process.poll() is None:
            assert time.monotonic() < deadline, "digest dev never gave up"
            pids = _executor_pids(executor_log)
            if pids[-1] not in killed and _running(pids[-1]):
                os.kill(pids[-1], signal.SIGKILL)
                killed.append(pids[-1])
            time.sleep(0.1)
        assert process.returncode == 1
    assert len(killed) == 4
    output = (tmp_path / "out.log").read_text()
    assert (
        "executor exited (signal SIGKILL) 4 times within 60 s: not starting "
        f"it again; stopping (log: {executor_log})"
    ) in output, output
    assert not stack.answers(f"http://127.0.0.1:{port}/healthz")
    assert not stack.answers(f"http://127.0.0.1:{executor_port}/health")
    assert "Traceback" not in output


@contextlib.contextmanager
def _held_port() -> Iterator[int]:
    """A port on loopback that something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "dev"])
def test_a_busy_backend_port_is_refused_in_one_line(
    tmp_path: Path, command: str
) -> None:
    executor_port = stack.free_port()
    with _held_port() as port:
        args = [command, "--port", str(port)]
        if command == "dev":
            args += ["--executor-port", str(executor_port)]
        with _started(args, tmp_path) as process:
            assert process.wait(timeout=60) == 2
    output = (tmp_path / "out.log").read_text()
    assert output.strip().splitlines() == [
        f"port {port} on 127.0.0.1 is already in use (by a service left from "
        "an earlier run?); stop what holds it or choose another port with --port"
    ]
    # dev refused before it started its executor.
    assert not stack.answers(f"http://127.0.0.1:{executor_port}/health")


def _refused(args: list[str], tmp_path: Path) -> list[str]:
    """The lines `digest ARGS` printed, once it has exited with 2."""
    with _started(args, tmp_path) as process:
        assert process.wait(timeout=30) == 2
    return (tmp_path / "out.log").read_text().strip().splitlines()


@pytest.mark.parametrize(
    ("args", "flag", "value"),
    [
        (["serve"], "--port", "70000"),
        (["serve"], "--port", "-1"),
        (["functions", "serve"], "--port", "0"),
        (["dev"], "--port", "65536"),
        (["dev"], "--executor-port", "70000"),
        # It would say 70000 and listen on 4464 (70000 modulo 65536).
        (["devserver"], "--port", "70000"),
        (["tunnel", "up"], "--port", "70000"),
    ],
)
def test_a_port_out_of_range_is_refused_in_one_line(
    tmp_path: Path, args: list[str], flag: str, value: str
) -> None:
    lines = _refused([*args, flag, value], tmp_path)
    assert lines == [f"{flag} must be 1-65535, not {value}"]


def test_the_executors_own_entry_refuses_a_port_out_of_range() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devserver", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "python -m devserver: error: argument --port/-p: must be 1-65535, not 70000"
    )


def test_a_busy_devserver_port_is_refused_in_one_line(tmp_path: Path) -> None:
    with _held_port() as port:
        lines = _refused(["devserver", "--port", str(port)], tmp_path)
    assert lines == [
        f"port {port} on 127.0.0.1 is already in use (by a service left from "
        "an earlier run?); stop what holds it or choose another port with --port"
    ]


def test_dev_refuses_one_port_for_both(tmp_path: Path) -> None:
    port = str(stack.free_port())
    lines = _refused(["dev", "--port", port, "--executor-port", port], tmp_path)
    assert lines == ["--port and --executor-port must differ"]
    assert not stack.answers(f"http://127.0.0.1:{port}/health")


@pytest.mark.parametrize("command", [["serve"], ["devserver"]])
def test_an_address_not_on_this_machine_is_named_as_such(
    tmp_path: Path, command: list[str]
) -> None:
    # TEST-NET-1: on no machine's interface; binding to it sends nothing.
    port = stack.free_port()
    lines = _refused([*command, "--host", "192.0.2.1", "--port", str(port)], tmp_path)
    assert lines == [
        f"cannot listen on 192.0.2.1:{port}: that address is not on this "
        "machine; give --host 127.0.0.1 or one of this machine's addresses"
    ]
