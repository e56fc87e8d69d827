"""CPU work runs in worker processes that never outlive the serving process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from functions.cpu import run_cpu, shutdown_pool

SERVING_PROCESS = textwrap.dedent(
    """
    import asyncio, multiprocessing, sys, time
    from functions.cpu import run_cpu

    async def main():
        await run_cpu(sum, [1, 2, 3])
        for child in multiprocessing.active_children():
            print(child.pid, flush=True)
        print("ready", flush=True)
        time.sleep(600)

    asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read()
    except FileNotFoundError:
        return False


async def test_work_runs_in_another_process() -> None:
    try:
        assert await run_cpu(os.getpid) != os.getpid()
        assert await run_cpu(sum, [1, 2, 3]) == 6
    finally:
        shutdown_pool()


def test_workers_exit_when_the_server_is_killed() -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVING_PROCESS],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        workers = []
        for line in server.stdout:
            if line.strip() == "ready":
                break
            workers.append(int(line))
        assert workers
        assert all(_alive(pid) for pid in workers)
    finally:
        server.kill()
        server.wait()

    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in workers):
        if time.monotonic() > deadline:
            pytest.fail(f"workers {workers} outlived their killed parent")
        time.sleep(0.2)
