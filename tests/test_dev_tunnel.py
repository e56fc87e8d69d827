"""`digest dev --tunnel` for real: the whole dev stack in a project folder
of its own, its backend exposed through the lan tunnel on loopback
addresses standing in for the local network (127.0.0.2, then 127.0.0.3).

The executor `digest dev` starts must call the app at the tunnel's URL,
and after a restart at a new address, at the new one only; Ctrl-C must
stop everything it started. A tunnel that cannot open stops it before it
starts anything."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from digest.stack import Service, free_port
from tests.conftest import CORPUS, Stack
from tests.tunnel_helpers import (
    FIRST,
    ROOT,
    SECOND,
    DigestProcess,
    Witness,
    project_env,
    run_digest,
)

LOCAL_FILE_START = "# this project's own settings\nTUNNEL_PROVIDER=lan\n"


@dataclass
class Project:
    """A working folder with its dotenv files, state and ports."""

    folder: Path
    home: Path
    port: int
    executor_port: int
    env: dict[str, str]

    @property
    def local_file(self) -> Path:
        return self.folder / ".env.dev.local"

    @property
    def executor_url(self) -> str:
        return f"http://127.0.0.1:{self.executor_port}"

    def dev(self, address: str, **env: str) -> DigestProcess:
        """`digest dev --tunnel -v` here, the lan tunnel on `address`."""
        return DigestProcess(
            self.folder,
            [
                *("dev", "--tunnel", "-v", "--port", str(self.port)),
                *("--executor-port", str(self.executor_port)),
            ],
            {**self.env, "TUNNEL_LAN_ADDRESS": address, **env},
            f"dev-{address}",
        )

    def stack(self, running: DigestProcess) -> Stack:
        """The API and executor of a running `digest dev`, to submit jobs
        through (both are served by it, so both stand for its process)."""
        backend = Service(
            "backend", f"http://127.0.0.1:{self.port}", running.process, running.output
        )
        executor = Service(
            "executor", self.executor_url, running.process, self.home / "executor.log"
        )
        return Stack(executor=executor, backend=backend, home=self.home)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(ROOT / ".env.dev", folder / ".env.dev")
    (folder / ".env.dev.local").write_text(LOCAL_FILE_START)
    home = tmp_path / "home"
    env = {
        "DIGEST_HOME": str(home),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}",
        # The retention job is a cron function: a tick during a restart
        # would be a call this test did not make. New Year's midnight
        # keeps it out of the way.
        "JOB_RETENTION_CRON": "0 0 1 1 *",
    }
    return Project(folder, home, free_port(), free_port(), env)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def assert_nothing_listens(project: Project, tunnel_address: str = "") -> None:
    """The backend, the executor and the tunnel's relay are all gone."""
    ends = [("127.0.0.1", project.port), ("127.0.0.1", project.executor_port)]
    if tunnel_address:
        ends.append((tunnel_address, project.port))
    for host, port in ends:
        assert not listening(host, port), f"{host}:{port} is still listening"


def app_urls(executor_url: str) -> set[str]:
    """Every URL the executor calls the synced apps and functions at."""
    answer = httpx.get(f"{executor_url}/v1/apps", timeout=10)
    assert answer.status_code == 200, answer.text
    urls = set()
    for synced in answer.json()["data"]:
        urls.add(synced["url"].split("?")[0])
        urls |= {f["url"].split("?")[0] for f in synced["functions"]}
    return urls


def wait_for_sync(project: Project, running: DigestProcess, url: str) -> None:
    """Until the executor calls the app at `url`, and nowhere else."""
    wanted = {f"{url}/api/inngest"}
    last: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert running.process.poll() is None, running.text()
        with contextlib.suppress(httpx.HTTPError):
            last = app_urls(project.executor_url)
        if last == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"the executor calls {last}, not {wanted}")


def test_dev_tunnel_exposes_the_backend_and_follows_a_new_address(
    project: Project,
) -> None:
    port = project.port
    first_url, second_url = f"http://{FIRST}:{port}", f"http://{SECOND}:{port}"
    text = (CORPUS / "pep-0020.rst").read_text()

    first = project.dev(FIRST)
    try:
        wait_for_sync(project, first, first_url)
        said = first.wait_for("Application startup complete")
        assert f"tunnel (lan) {first_url} -> 127.0.0.1:{port}" in said
        assert f"wrote PUBLIC_URL={first_url} to {project.local_file}" in said
        assert "changed" not in said
        local = project.local_file.read_text()
        assert local.startswith(LOCAL_FILE_START)
        assert f"PUBLIC_URL={first_url}" in local
        running = project.stack(first)
        job = running.wait(running.submit(text))
        assert job["status"] == "succeeded", job
        assert "relaying a connection" in first.text()
        # SIGINT to `digest dev` alone (kill -INT): it stops its executor.
        assert first.interrupt() == 0
    finally:
        first.stop()
    assert "Traceback" not in first.text()
    assert_nothing_listens(project, FIRST)
    # Closed, the tunnel's address leads nowhere: PUBLIC_URL is no longer in
    # the file (it was not before), only the record of the last tunnel.
    assert "tunnel closed" in first.text()
    assert dotenv_values(project.local_file).get("PUBLIC_URL") is None
    last = dotenv_values(project.local_file)["DIGEST_TUNNEL_LAST_PUBLIC_URL"]
    assert last == first_url

    # The old address stays observed: any call to it is counted.
    witness = Witness(FIRST, port)
    second = project.dev(SECOND)
    try:
        wait_for_sync(project, second, second_url)
        said = second.wait_for("Application startup complete")
        assert f"the URL changed: it was {first_url}, it is now {second_url}" in said
        local = project.local_file.read_text()
        assert local.startswith(LOCAL_FILE_START)
        assert f"PUBLIC_URL={second_url}" in local
        assert FIRST not in local
        moved = f"moved from {first_url}/api/inngest to {second_url}/api/inngest"
        assert moved in (project.home / "executor.log").read_text()
        running = project.stack(second)
        job = running.wait(running.submit(text))
        assert job["status"] == "succeeded", job
        assert "relaying a connection" in second.text()
        # Ctrl-C in a terminal: SIGINT to every process of the group.
        assert second.interrupt(whole_group=True) == 0
    finally:
        second.stop()
        witness.close()
    # Ctrl-C also reaches the backend's CPU workers, which ignore it and
    # leave the shutdown to the server: no traceback from anyone.
    said = second.text()
    assert "Traceback" not in said, said
    assert witness.connections == 0
    assert_nothing_listens(project, SECOND)
    assert dotenv_values(project.local_file).get("PUBLIC_URL") is None


def test_dev_tunnel_with_provider_none_says_there_is_no_tunnel(
    project: Project,
) -> None:
    running = project.dev(FIRST, TUNNEL_PROVIDER="none")
    try:
        local_url = f"http://127.0.0.1:{project.port}"
        wait_for_sync(project, running, local_url)
        said = running.text()
        assert "TUNNEL_PROVIDER is none" in said
        assert "set TUNNEL_PROVIDER to ngrok or lan" in said
        assert running.interrupt() == 0
    finally:
        running.stop()
    assert_nothing_listens(project)


@pytest.mark.parametrize(
    ("provider", "named"),
    [
        ("bogus", "TUNNEL_PROVIDER"),
        # The token is missing, so ngrok's cloud is never contacted.
        ("ngrok", "NGROK_AUTHTOKEN"),
    ],
    ids=["unknown-provider", "ngrok-without-token-without-ngrok-cloud"],
)
def test_dev_tunnel_that_cannot_open_exits_2_before_starting_anything(
    project: Project, provider: str, named: str
) -> None:
    done = subprocess.run(
        [
            *(sys.executable, "-m", "digest.cli", "dev", "--tunnel"),
            *("--port", str(project.port)),
            *("--executor-port", str(project.executor_port)),
        ],
        cwd=project.folder,
        env=project_env({**project.env, "TUNNEL_PROVIDER": provider}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert named in errors[0]
    assert "executor on" not in done.stdout
    assert not (project.home / "executor.log").exists()
    assert not listening("127.0.0.1", project.executor_port)
    assert project.local_file.read_text() == LOCAL_FILE_START


def test_dev_tunnel_killed_is_named_by_doctor_and_put_back_by_the_next_start(
    project: Project,
) -> None:
    """`digest dev --tunnel` SIGKILLed (with its executor) leaves the
    tunnel's PUBLIC_URL behind; doctor names it, and the next start puts
    the user's own value back before writing its own URL."""
    port = project.port
    first_url, second_url = f"http://{FIRST}:{port}", f"http://{SECOND}:{port}"
    mine = f"http://127.0.0.1:{port}"
    with project.local_file.open("a") as local:
        local.write(f"PUBLIC_URL={mine}\n")
    first = project.dev(FIRST)
    try:
        wait_for_sync(project, first, first_url)
        first.kill()
    finally:
        first.stop()
    assert dotenv_values(project.local_file)["PUBLIC_URL"] == first_url
    deadline = time.monotonic() + 30
    while listening("127.0.0.1", project.executor_port) or listening("127.0.0.1", port):
        assert time.monotonic() < deadline, "the killed stack still listens"
        time.sleep(0.2)
    assert_nothing_listens(project, FIRST)

    done = run_digest(
        project.folder,
        ["doctor"],
        {**project.env, "INNGEST_BASE_URL": project.executor_url},
    )
    assert done.returncode == 1, done
    said = " ".join(done.stdout.split())
    assert f"fail tunnel PUBLIC_URL={first_url}" in said, said
    assert f"no longer running (pid {first.process.pid})" in said
    assert f"curl -X PUT {first_url}" not in said

    second = project.dev(SECOND)
    try:
        wait_for_sync(project, second, second_url)
        said = second.text()
        assert (
            f"PUBLIC_URL pointed at a tunnel that is gone ({first_url}); "
            f"put back to {mine}"
        ) in said, said
        assert second.interrupt() == 0
    finally:
        second.stop()
    assert_nothing_listens(project, SECOND)
    assert dotenv_values(project.local_file)["PUBLIC_URL"] == mine
    assert project.local_file.read_text().startswith(LOCAL_FILE_START)
