"""`digest tunnel up` around the tunnel itself: the profile it runs in, the
port it picks, what it says when nothing answers there, and the app's own
answer when a re-sync is refused. The `none` provider stands in for a
tunnel (its URL is the local one), so that no address but loopback is used."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digest.stack import Service, free_port
from tests.prod_functions import new_prod_key, start_prod_functions
from tests.tunnel_helpers import ROOT, DigestProcess, project_env


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
