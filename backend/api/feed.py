"""One reader of a job's event log per process, however many clients follow it.

The step functions may run in another process than the API (another
replica, a functions service), so the API learns of a change by reading the
job's event log. A `_Watch` reads the log of one job when the store says the
job changed (backend.store.notify) and, since such news can be lost, also
every `reread` seconds without it; it keeps what it read, and every
subscriber of that job reads from the watch, so 200 clients on one job cost
one query per change, not 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from backend.store import JobEvent, JobStore

log = logging.getLogger("digest.backend.feed")


class _Watch:
    def __init__(self, store: JobStore, job_id: str, start: int, reread: float):
        self.start = start
        self.events: list[JobEvent] = []
        self.users = 0
        self._store, self._job_id, self._reread = store, job_id, reread
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read(), name=f"watch-{job_id}")

    @property
    def last(self) -> int:
        return self.events[-1].seq if self.events else self.start

    async def _read(self) -> None:
        with self._store.changes.subscribe(self._job_id) as woken:
            while True:
                # Cleared before reading, so news that comes during the read
                # is not lost: it makes the next wait return at once.
                woken.clear()
                try:
                    found = await self._store.events_after(self._job_id, self.last)
                except Exception:
                    log.exception("reading the events of job %s failed", self._job_id)
                    found = []
                if found:
                    self.events += found
                    changed, self._changed = self._changed, asyncio.Event()
                    changed.set()
                    if found[-1].is_final:
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), self._reread)

    async def after(self, seq: int) -> list[JobEvent]:
        """Events above `seq` that this watch holds, waiting for one if none."""
        while self.last <= seq:
            await self._changed.wait()
        return [event for event in self.events if event.seq > seq]


class JobFeed:
    def __init__(self, store: JobStore, *, reread: float = 1.0) -> None:
        self._store = store
        self._reread = reread
        self._watches: dict[str, _Watch] = {}

    async def follow(self, job_id: str, seq: int) -> AsyncIterator[JobEvent]:
        """Every event of the job above `seq`, in order, until its final one."""
        await self._store.changes.start()
        watch = self._watches.get(job_id)
        if watch is None:
            watch = _Watch(self._store, job_id, seq, self._reread)
            self._watches[job_id] = watch
        watch.users += 1
        try:
            # What is older than the watch's start is read from the log.
            while seq < watch.start:
                page = await self._store.events_after(job_id, seq)
                for event in page:
                    if event.seq > watch.start:
                        break
                    yield event
                    if event.is_final:
                        return
                    seq = event.seq
                if not page or seq != page[-1].seq:
                    seq = watch.start
            while True:
                for event in await watch.after(seq):
                    yield event
                    if event.is_final:
                        return
                    seq = event.seq
        finally:
            watch.users -= 1
            if watch.users == 0 and self._watches.get(job_id) is watch:
                del self._watches[job_id]
                # Not awaited: this may run while our own task is cancelled.
                watch.task.cancel()

    async def close(self) -> None:
        for watch in list(self._watches.values()):
            watch.task.cancel()
        self._watches.clear()
