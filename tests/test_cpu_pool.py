"""CPU work runs in worker processes that never outlive the serving process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from functions import cpu
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


def _kill_and_wait_for_break(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"workers {pids} survived SIGKILL")
        time.sleep(0.05)


async def test_a_killed_worker_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    """A worker killed (OOM killer, kill -9) must not break every later job."""
    try:
        worker = await run_cpu(os.getpid)
        broken = cpu._get_pool()
        assert worker in broken._processes
        _kill_and_wait_for_break([worker])
        # Let the pool notice, so the next call meets an already broken pool.
        deadline = time.monotonic() + 20
        while not broken._broken:
            if time.monotonic() > deadline:
                pytest.fail("the pool never noticed its killed worker")
            await asyncio.sleep(0.05)

        with caplog.at_level(logging.WARNING, logger="digest.functions.cpu"):
            assert await run_cpu(sum, [1, 2, 3]) == 6
        assert cpu._get_pool() is not broken
        warnings = [r for r in caplog.records if "CPU worker pool broke" in r.message]
        assert len(warnings) == 1
        assert await run_cpu(sum, [4, 5]) == 9
    finally:
        shutdown_pool()


async def test_jobs_running_when_a_worker_dies_are_run_again_once() -> None:
    """Calls in flight on a pool that breaks retry on one fresh pool."""
    try:
        await run_cpu(sum, [1])
        broken = cpu._get_pool()
        in_flight = [asyncio.ensure_future(run_cpu(time.sleep, 1.0)) for _ in range(3)]
        deadline = time.monotonic() + 20
        while not broken._processes:
            if time.monotonic() > deadline:
                pytest.fail("no worker started")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        _kill_and_wait_for_break(list(broken._processes))
        assert await asyncio.gather(*in_flight) == [None, None, None]
        replacement = cpu._get_pool()
        assert replacement is not broken
        assert await run_cpu(sum, [1, 2, 3]) == 6
        assert cpu._get_pool() is replacement
    finally:
        shutdown_pool()
