"""What the tunnel tests share: a `digest` command run in a project folder
of its own, and a witness listening on an address that must get no call."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from digest.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Loopback addresses standing in for the local network: the first address,
# then the one it changes to.
FIRST, SECOND = "127.0.0.2", "127.0.0.3"


class Witness:
    """A listener on an old address that records every connection to it."""

    def __init__(self, host: str, port: int) -> None:
        self.connections = 0
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen()
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


def project_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any Digest setting (so only the
    project folder's dotenv files and `overrides` configure the command)."""
    settings = {name.upper() for name in Settings.model_fields}
    clean = {
        k: v
        for k, v in os.environ.items()
        if k.upper() not in settings and not k.startswith("INNGEST_")
    }
    return {**clean, "PYTHONPATH": str(ROOT), "APP_ENV": "dev", **overrides}


class DigestProcess:
    """`digest ARGS` run in `folder`, its output (both streams) in a file.

    It runs in a process group of its own, so `interrupt` can stop it the
    way Ctrl-C in a terminal does: every process of the group gets SIGINT.
    """

    def __init__(
        self, folder: Path, args: list[str], env: Mapping[str, str], name: str
    ) -> None:
        self.output = folder / f"{name}.log"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "digest.cli", *args],
                cwd=folder,
                env=project_env(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, line: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.text():
                return self.text()
            assert self.process.poll() is None, self.text()
            time.sleep(0.1)
        raise AssertionError(f"no {line!r} in:\n{self.text()}")

    def interrupt(self, *, whole_group: bool = False) -> int:
        """SIGINT to the process (or its whole group); its exit code."""
        if self.process.poll() is None:
            if whole_group:
                os.killpg(self.process.pid, signal.SIGINT)
            else:
                self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL to every process of its group, as `kill -9` or an OOM
        kill would end it: no handler runs, nothing is put back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        # Its children (the executor, CPU workers) die a moment later.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still running; and SIGKILL to any
        child it left behind (a test that failed must not leave one)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def run_digest(
    folder: Path, args: list[str], env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` in `folder`, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "digest.cli", *args],
        cwd=folder,
        env=project_env(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
