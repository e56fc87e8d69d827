"""Telling the process's event streams that a job changed.

A write that logs a job event names the job once it commits (`publish`), so
streams in this process read the log at once. Across processes (backend
replicas, a functions service) PostgreSQL carries the news: every such
write also runs NOTIFY in its transaction, which the server delivers on
commit to each replica's LISTEN connection. SQLite has no such channel, so
there only writes made in this process wake a stream at once.

A notification is a hint, never the data: a stream re-reads the job's log
when woken and also every little while without one, so a notification lost
with a dropped connection, or never sent by another process on SQLite,
delays a client but never strands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import asyncpg

log = logging.getLogger("digest.backend.store")

# The NOTIFY channel; the payload is the job's id.
CHANNEL = "digest_job_changes"
# How often an idle LISTEN connection is checked, and how soon a lost one
# is opened again.
CHECK_EVERY = 10.0
RECONNECT_AFTER = 1.0
# What a lost or refused LISTEN connection raises.
_LOST = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class JobChanges:
    """Subscriptions by job id, woken by `publish`."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the job may have changed; clear it before
        reading the job, then wait on it."""
        woken = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(woken)
        try:
            yield woken
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(woken)
                if not waiting:
                    del self._waiting[job_id]

    def publish(self, job_id: str) -> None:
        for woken in self._waiting.get(job_id, ()):
            woken.set()

    def publish_all(self) -> None:
        """Wake every subscriber: news may have been missed."""
        for waiting in self._waiting.values():
            for woken in waiting:
                woken.set()

    async def start(self) -> None:
        """Begin hearing of other processes' writes, where the database can."""

    async def close(self) -> None:
        pass


class PostgresChanges(JobChanges):
    """JobChanges that also hears NOTIFY from every process on the database."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self._dsn = dsn
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="job-changes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.publish(payload)

    async def _listen(self) -> None:
        lost_before = False
        while True:
            try:
                connection = await asyncpg.connect(self._dsn, timeout=10)
            except _LOST as exc:
                if not lost_before:
                    log.warning("cannot LISTEN for job changes, retrying: %s", exc)
                    lost_before = True
                await asyncio.sleep(RECONNECT_AFTER)
                continue
            try:
                await connection.add_listener(CHANNEL, self._heard)
                if lost_before:
                    log.info("listening for job changes again")
                    lost_before = False
                # Changes made while nobody listened were not heard.
                self.publish_all()
                await _until_closed(connection)
                log.warning("the LISTEN connection closed, reopening")
                lost_before = True
            except _LOST as exc:
                log.warning("lost the LISTEN connection, reopening: %s", exc)
                lost_before = True
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), timeout=2)


async def _until_closed(connection: asyncpg.Connection) -> None:
    closed = asyncio.Event()
    connection.add_termination_listener(lambda _connection: closed.set())
    while not closed.is_set():
        try:
            await asyncio.wait_for(closed.wait(), CHECK_EVERY)
        except TimeoutError:
            # A connection that died silently shows it here.
            await connection.execute("SELECT 1", timeout=CHECK_EVERY)
