"""CPU-heavy work runs in worker processes, off the event loop.

Ranking sentences of a large document takes seconds of pure computation; in
the serving process that would stall the API and every other run. Worker
processes are started with `spawn` because forking a process that already
runs an event loop and threads copies their locks in whatever state they
are in.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_pool: ProcessPoolExecutor | None = None


def _exit_with_parent(parent: int) -> None:
    """Worker initialiser: end this worker when the serving process is gone.

    A pool's workers outlive a parent killed with SIGKILL (they wait on a
    queue nobody will write to), so each one watches its parent's pid.
    Ctrl-C in a terminal reaches the whole process group; the workers ignore
    it because the serving process shuts the pool down itself, and a worker
    dying of it would only print a traceback per worker.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        workers = max(1, min(4, os.cpu_count() or 1))
        _pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
    return _pool


async def run_cpu(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args)` in a worker process and wait for it without blocking."""
    if kwargs:
        raise TypeError("run_cpu passes positional arguments only")
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_pool(), fn, *args)


def shutdown_pool() -> None:
    """Stop the workers; work not started is dropped, its step is retried."""
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=True, cancel_futures=True)
        _pool = None
