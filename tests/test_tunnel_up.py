"""`digest tunnel up` around the tunnel itself: the profile it runs in, the
port it picks, what it says when nothing answers there, and the app's own
answer when a re-sync is refused. The `none` provider stands in for a
tunnel (its URL is the local one), so that no address but loopback is used."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from digest.stack import Service, free_port
from tests.conftest import Stack, start_stack
from tests.prod_functions import new_prod_key, start_prod_functions
from tests.tunnel_helpers import (
    FIRST,
    ROOT,
    SECOND,
    DigestProcess,
    project_env,
    run_digest,
)
from tunnel.lan import LanTunnel
from tunnel.record import put_back_stale


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    for name in (".env.dev", ".env.prod"):
        shutil.copy(ROOT / name, project / name)
    return project


def tunnel_up(folder: Path, *args: str, **env: str) -> DigestProcess:
    return DigestProcess(
        folder, ["tunnel", "up", "--provider", "none", *args], env, "tunnel"
    )


def test_tunnel_up_refuses_the_prod_profile_and_writes_nothing(folder: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "digest.cli", "tunnel", "up", "--target", "backend"],
        cwd=folder,
        env=project_env({"APP_ENV": "prod"}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "dev profile, not prod" in lines[0]
    assert "TUNNEL_PROVIDER=none" in lines[0]
    assert not (folder / ".env.prod.local").exists()
    assert done.stdout == ""


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def something_listening() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_executor_port_comes_from_inngest_base_url(
    folder: Path, something_listening: int
) -> None:
    port = something_listening
    running = tunnel_up(folder, INNGEST_BASE_URL=f"http://127.0.0.1:{port}")
    try:
        said = running.wait_for("tunnel open")
        assert f"tunnel (none) http://127.0.0.1:{port} -> 127.0.0.1:{port}" in said
        assert "nothing answers" not in said
        assert running.interrupt() == 0
    finally:
        running.stop()


def test_nothing_answering_at_the_local_port_is_said_before_tunnel_open(
    folder: Path,
) -> None:
    port = free_port()
    running = tunnel_up(folder, "--target", "backend", "--port", str(port))
    try:
        said = running.wait_for("tunnel open")
        warning = f"warning: nothing answers at 127.0.0.1:{port}"
        assert warning in said
        assert said.index(warning) < said.index("tunnel open")
        assert f"digest serve --port {port}" in said
        assert "re-synced" not in said
        assert running.interrupt() == 0
    finally:
        running.stop()
    # Closed, it tries the local URL, and says what to run when that fails.
    said = running.text()
    closed = said[said.index("tunnel closed") :]
    assert f"could not re-sync the app at http://127.0.0.1:{port}/api/inngest" in (
        closed
    )
    assert f"once the app answers: curl -X PUT http://127.0.0.1:{port}/api/inngest" in (
        closed
    )


@pytest.fixture
def cloud_mode_app(tmp_path: Path) -> Iterator[Service]:
    service = start_prod_functions(tmp_path / "prod", new_prod_key())
    yield service
    service.stop()


def test_a_refused_resync_shows_the_apps_own_answer(
    folder: Path, cloud_mode_app: Service
) -> None:
    port = cloud_mode_app.url.rsplit(":", 1)[1]
    running = tunnel_up(folder, "--target", "backend", "--port", port)
    try:
        said = running.wait_for("tunnel open")
        assert (
            "could not re-sync the app through "
            f"http://127.0.0.1:{port}: the app answered 400: server_kind_mismatch "
            "Sync rejected since it's from a Dev Server but expected Cloud"
        ) in said, said
        assert "APP_ENV=dev" in said
        assert "start the backend" not in said
        assert running.interrupt() == 0
    finally:
        running.stop()


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Stack]:
    running = start_stack(tmp_path / "stack", retry_interval=0.5)
    yield running
    running.backend.stop()
    running.executor.stop()


def synced_urls(running: Stack) -> set[str]:
    answer = httpx.get(running.executor.url + "/dev", timeout=10)
    return {f["url"].split("?")[0] for f in answer.json()["functions"]}


def test_closing_a_backend_tunnel_resyncs_the_app_at_its_local_url(
    local_stack: Stack, folder: Path
) -> None:
    """Ctrl-C on a lan tunnel with a connection open through it: the app is
    synced back at 127.0.0.1, so jobs run again, and nothing is logged as
    an error on the way out."""
    port = int(local_stack.backend.url.rsplit(":", 1)[1])
    local_url = f"http://127.0.0.1:{port}/api/inngest"
    # The user's own value, which the tunnel's URL replaces while it is open.
    local_file = folder / ".env.dev.local"
    local_file.write_text(f"PUBLIC_URL=http://127.0.0.1:{port}\n")
    running = DigestProcess(
        folder,
        [
            *("tunnel", "up", "--target", "backend"),
            *("--provider", "lan", "--port", str(port)),
        ],
        {"TUNNEL_LAN_ADDRESS": FIRST},
        "tunnel-lan",
    )
    try:
        running.wait_for("tunnel open")
        assert synced_urls(local_stack) == {f"http://{FIRST}:{port}/api/inngest"}
        # A keep-alive connection through the relay, open at Ctrl-C.
        with socket.create_connection((FIRST, port), timeout=10) as held:
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.1 200")
            assert running.interrupt(whole_group=True) == 0
    finally:
        running.stop()
    said = running.text()
    assert f"re-synced: the executor now calls {local_url}" in said
    assert said.index("tunnel closed") < said.index(local_url)
    assert "Traceback" not in said, said
    assert "Exception in callback" not in said, said
    assert synced_urls(local_stack) == {local_url}
    job = local_stack.wait(local_stack.submit("A short document. " * 20))
    assert job["status"] == "succeeded", job
    # The dead tunnel's address is not left where the CLI and doctor read it.
    written = dotenv_values(local_file)
    assert written["PUBLIC_URL"] == f"http://127.0.0.1:{port}", written
    assert written["DIGEST_TUNNEL_LAST_PUBLIC_URL"] == f"http://{FIRST}:{port}"


def test_the_lan_relay_closes_open_connections_quietly(
    caplog: pytest.LogCaptureFixture, something_listening: int
) -> None:
    port = something_listening
    tunnel = LanTunnel(FIRST)
    url = tunnel.open(port)
    try:
        with socket.create_connection((FIRST, port), timeout=10) as held:
            held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.")
            with caplog.at_level(logging.WARNING):
                tunnel.close()
    finally:
        tunnel.close()
    assert url == f"http://{FIRST}:{port}"
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not loud, [r.getMessage() for r in loud]


def test_a_second_tunnel_for_the_same_setting_is_refused_and_writes_nothing(
    folder: Path, something_listening: int
) -> None:
    port = something_listening
    first = tunnel_up(folder, "--port", str(port))
    try:
        first.wait_for("tunnel open")
        second = tunnel_up(folder, "--port", str(port))
        assert second.process.wait(timeout=60) == 2, second.text()
        said = second.text()
        assert f"another tunnel (pid {first.process.pid}) is open" in said
        assert "INNGEST_BASE_URL" in said
        # The first tunnel's URL stays: the second neither wrote nor removed.
        local = dotenv_values(folder / ".env.dev.local")
        assert local["INNGEST_BASE_URL"] == f"http://127.0.0.1:{port}"
        assert first.interrupt() == 0
    finally:
        first.stop()
    # Closed, the hold ends with it: a new tunnel opens.
    third = tunnel_up(folder, "--port", str(port))
    try:
        third.wait_for("tunnel open")
        assert third.interrupt() == 0
    finally:
        third.stop()


def test_a_killed_tunnels_setting_is_named_and_put_back_by_the_next_tunnel(
    folder: Path, tmp_path: Path
) -> None:
    """SIGKILL leaves the tunnel's PUBLIC_URL in the file. While the tunnel
    lives nothing touches it; once it is gone, doctor and the CLI say the
    address is a dead tunnel's, and the next tunnel puts the user's value
    back before it opens."""
    port = free_port()
    home = tmp_path / "home"
    # Nothing of the lead's: an executor and a database that are not there.
    env = {
        "DIGEST_HOME": str(home),
        "INNGEST_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}",
    }
    local_file = folder / ".env.dev.local"
    mine = f"http://127.0.0.1:{port}"
    local_file.write_text(f"PUBLIC_URL={mine}\n")
    first_url, second_url = f"http://{FIRST}:{port}", f"http://{SECOND}:{port}"

    def lan_tunnel(address: str) -> DigestProcess:
        return DigestProcess(
            folder,
            [
                *("tunnel", "up", "--target", "backend"),
                *("--provider", "lan", "--port", str(port)),
            ],
            {**env, "TUNNEL_LAN_ADDRESS": address},
            f"tunnel-{address}",
        )

    def tunnel_checks() -> list[dict[str, str]]:
        done = run_digest(folder, ["doctor", "--json"], env)
        assert done.returncode == 1, done
        checks = json.loads(done.stdout)["checks"]
        return [check for check in checks if check["name"] == "tunnel"]

    first = lan_tunnel(FIRST)
    try:
        first.wait_for("tunnel open")
        assert dotenv_values(local_file)["PUBLIC_URL"] == first_url
        written = local_file.read_text()
        # Alive, its setting is nobody else's to put back: not by doctor,
        # not by a start-up, not by a client's error.
        assert tunnel_checks() == []
        assert put_back_stale(home, "PUBLIC_URL") is None
        done = run_digest(folder, ["status", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], env)
        assert done.returncode == 1, done
        assert first_url in done.stderr
        assert "no longer running" not in done.stderr
        assert local_file.read_text() == written
        first.kill()
    finally:
        first.stop()
    assert "tunnel closed" not in first.text()
    assert dotenv_values(local_file)["PUBLIC_URL"] == first_url

    # Gone: doctor names the setting, the dead URL, and the fix.
    [check] = tunnel_checks()
    assert check["status"] == "fail", check
    assert f"PUBLIC_URL={first_url} in {local_file}" in check["detail"]
    assert f"no longer running (pid {first.process.pid})" in check["detail"]
    assert "digest tunnel up --target backend" in check["fix"]
    assert f"to {mine}" in check["fix"]
    # The CLI's connection error says so too.
    done = run_digest(folder, ["status", "01ARZ3NDEKTSV4RRFFQ69G5FAV"], env)
    assert done.returncode == 1, done
    assert f"cannot reach the backend at {first_url}" in done.stderr
    assert "written by a tunnel that is no longer running" in done.stderr
    assert f"it was {mine} before" in done.stderr
    # Looking changed nothing.
    assert dotenv_values(local_file)["PUBLIC_URL"] == first_url

    # The next tunnel puts the user's value back first, so that its own
    # close leaves that value, not none.
    second = lan_tunnel(SECOND)
    try:
        said = second.wait_for("tunnel open")
        healed = (
            f"PUBLIC_URL pointed at a tunnel that is gone ({first_url}); "
            f"put back to {mine} in {local_file}"
        )
        assert healed in said
        assert said.index(healed) < said.index(f"wrote PUBLIC_URL={second_url}")
        assert dotenv_values(local_file)["PUBLIC_URL"] == second_url
        assert second.interrupt() == 0
    finally:
        second.stop()
    written = dotenv_values(local_file)
    assert written["PUBLIC_URL"] == mine, written
    assert tunnel_checks() == []
