"""CPU-heavy work runs in worker processes, off the event loop.

Ranking sentences of a large document takes seconds of pure computation; in
the serving process that would stall the API and every other run. Worker
processes are started with `spawn` because forking a process that already
runs an event loop and threads copies their locks in whatever state they
are in.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("digest.functions.cpu")

_pool: ProcessPoolExecutor | None = None
# Guards `_pool`: concurrent callers that meet the same broken pool must
# replace it once, not once each.
_pool_lock = threading.Lock()


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


def _new_pool() -> ProcessPoolExecutor:
    workers = max(1, min(4, os.cpu_count() or 1))
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )


def _get_pool() -> ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _new_pool()
        return _pool


def _replace_broken_pool(broken: ProcessPoolExecutor) -> None:
    """Swap `broken` for a fresh pool, unless another caller already did.

    A worker killed from outside (the OOM killer, kill -9) breaks the whole
    pool: every pending and later call on it raises BrokenProcessPool.
    """
    global _pool
    with _pool_lock:
        if _pool is not broken:
            return
        log.warning(
            "CPU worker pool broke (a worker died: killed or out of memory); "
            "starting a new one"
        )
        _pool = _new_pool()
    # Its workers are dead or on their way out; nothing left to wait for.
    broken.shutdown(wait=False, cancel_futures=True)


async def run_cpu(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args)` in a worker process and wait for it without blocking.

    If the pool broke (a worker died), the call runs once more on a fresh
    pool; a second break propagates and the step's retry handles it.
    """
    if kwargs:
        raise TypeError("run_cpu passes positional arguments only")
    loop = asyncio.get_running_loop()
    pool = _get_pool()
    try:
        return await loop.run_in_executor(pool, fn, *args)
    except BrokenProcessPool:
        _replace_broken_pool(pool)
    return await loop.run_in_executor(_get_pool(), fn, *args)


def shutdown_pool() -> None:
    """Stop the workers; work not started is dropped, its step is retried."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
