"""Run the peers' own benchmark scripts (Celery + Redis, DBOS on SQLite).

    .venv/bin/python bench/peers.py [--venv /tmp/peers] [--steps 20 --runs 50]

The peers live in their own virtualenv, never in ours:

    python3 -m venv /tmp/peers && /tmp/peers/bin/pip install celery redis dbos

This script only calls the scripts in the peers folder (celery_chain.py,
dbos_steps.py) from a temporary copy of it, starting and stopping the Celery
worker itself, and relays what they print. Redis must already run
(PEER_REDIS, default redis://127.0.0.1:6379).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
# What each peer imports, and what pip installs for it.
PEERS = {
    "celery": ("celery, redis, kombu.transport.redis", "celery redis"),
    "dbos": ("dbos", "dbos"),
}


class PeerMissing(Exception):
    pass


def check_installed(venv: Path, peer: str) -> Path:
    """The venv's python, once it is known to import what ``peer`` needs."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise PeerMissing(
            f"no virtualenv at {venv}: python3 -m venv {venv} && "
            f"{venv}/bin/pip install celery redis dbos"
        )
    modules, packages = PEERS[peer]
    probe = subprocess.run(
        [str(python), "-c", f"import {modules}"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["?"])[-1]
        raise PeerMissing(
            f"{peer} is not installed in {venv} ({why}): "
            f"{venv}/bin/pip install {packages}"
        )
    return python


def check_redis() -> None:
    url = urlparse(os.environ.get("PEER_REDIS", "redis://127.0.0.1:6379"))
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError as error:
        raise PeerMissing(f"no Redis at {host}:{port} ({error})") from None


def run_script(python: Path, cwd: Path, script: str, steps: int, runs: int) -> None:
    done = subprocess.run(
        [str(python), script, str(steps), str(runs)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.splitlines()[-15:])
        raise RuntimeError(f"{script} exited {done.returncode}:\n{tail}")
    for line in done.stdout.splitlines():
        print(f"  {line}")


def start_worker(venv: Path, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    args = [str(venv / "bin" / "celery"), "-A", "celery_chain", "worker"]
    args += ["-P", "prefork", "-c", "2", "--loglevel", "info"]
    with log.open("wb") as out:
        worker = subprocess.Popen(
            args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(
                f"celery worker exited {worker.returncode}:\n" + tail(log)
            )
        if " ready." in log.read_text(errors="replace"):
            return worker
        time.sleep(0.2)
    stop_worker(worker)
    raise RuntimeError("celery worker was not ready within 60 s:\n" + tail(log))


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown by PID; its own process group is killed if it lingers."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_celery(venv: Path, folder: Path, steps: int, runs: int) -> None:
    python = check_installed(venv, "celery")
    check_redis()
    worker = start_worker(venv, folder, folder / "worker.log")
    try:
        run_script(python, folder, "celery_chain.py", steps, runs)
    finally:
        stop_worker(worker)


def run_dbos(venv: Path, folder: Path, steps: int, runs: int) -> None:
    python = check_installed(venv, "dbos")
    run_script(python, folder, "dbos_steps.py", steps, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/peers"))
    parser.add_argument("--peers-dir", type=Path, default=REPO.parent / "shared/peers")
    parser.add_argument("--steps", type=int, default=20, help="steps (tasks) per run")
    parser.add_argument("--runs", type=int, default=50, help="sequential runs")
    parser.add_argument("--only", choices=sorted(PEERS), action="append")
    args = parser.parse_args()

    if not (args.peers_dir / "celery_chain.py").exists():
        sys.exit(f"no peers scripts in {args.peers_dir} (see --peers-dir)")
    failed = False
    with tempfile.TemporaryDirectory(prefix="digest-peers-") as tmp:
        folder = Path(tmp) / "peers"
        shutil.copytree(args.peers_dir, folder)
        for peer, run in (("celery", run_celery), ("dbos", run_dbos)):
            if args.only and peer not in args.only:
                continue
            print(f"{peer} ({args.steps} steps x {args.runs} runs):", flush=True)
            try:
                run(args.venv, folder, args.steps, args.runs)
            except PeerMissing as missing:
                print(f"  skipped: {missing}")
                failed = True
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"  failed: {error}")
                failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
