"""The transactional outbox, on SQLite and on PostgreSQL.

A job and its `summary/requested` event commit together; relays on several
replicas send every event, once when nothing goes wrong, again after a
failure or a relay's death, never zero times; a backend killed between the
commit and the send still gets the job run after it restarts.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import inngest
import pytest
from sqlalchemy import func, select, text

from backend.events import EventSender
from backend.store import JobStore, open_store
from backend.store.models import JobEventRow, JobRow, OutboxRow
from digest import stack
from tests.conftest import Stack, start_stack

NEVER_AGAIN = timedelta(hours=1)


class RecordingClient(inngest.Inngest):
    """The real client, sending over real HTTP, that also notes what it sent."""

    def __init__(self, executor_url: str) -> None:
        super().__init__(
            app_id="digest-outbox-test",
            is_production=False,
            api_base_url=executor_url,
            event_api_base_url=executor_url,
        )
        self.sent: list[str] = []

    async def send(self, events: Any, *, skip_middleware: bool = False) -> list[str]:
        ids = await super().send(events, skip_middleware=skip_middleware)
        batch = events if isinstance(events, list) else [events]
        self.sent += [event.id for event in batch]
        return ids


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.Service]:
    """A real executor with no app synced: it takes events and runs nothing,
    so the jobs stay queued."""
    service = stack.start_executor(tmp_path_factory.mktemp("outbox-executor"))
    yield service
    service.stop()


@pytest.fixture
async def stores(database_url: str) -> AsyncIterator[list[JobStore]]:
    """Four stores on one database, each with its own connection pool, as
    four backend replicas have."""
    first = await open_store(database_url, migrate=True)
    opened = [first] + [await open_store(database_url, migrate=False) for _ in range(3)]
    yield opened
    for store in opened:
        await store.close()


async def _jobs(store: JobStore, count: int) -> list[str]:
    ids = []
    for n in range(count):
        job = await store.create_job(
            owner="o",
            text=f"Words {n}.",
            source_format="text",
            max_sentences=1,
            title=None,
        )
        ids.append(job.id)
    return ids


async def _pending(store: JobStore) -> int:
    async with store.engine.connect() as connection:
        return int(
            await connection.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .where(OutboxRow.sent_at.is_(None))
            )
            or 0
        )


async def test_a_new_job_has_its_event_waiting_under_its_own_id(
    stores: list[JobStore],
) -> None:
    [job_id] = await _jobs(stores[0], 1)
    async with stores[0].engine.connect() as connection:
        row = (await connection.execute(select(OutboxRow))).one()
    assert (row.id, row.job_id, row.name) == (job_id, job_id, "summary/requested")
    assert row.data == {"job_id": job_id}
    assert row.sent_at is None


async def test_no_job_is_stored_when_its_event_cannot_be(
    stores: list[JobStore],
) -> None:
    store = stores[0]
    async with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
                    "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"
                )
            )
        else:
            await connection.execute(
                text(
                    "CREATE FUNCTION refuse_outbox() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'outbox refused'; END $$ LANGUAGE plpgsql"
                )
            )
            await connection.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                )
            )
    with pytest.raises(Exception, match="outbox refused"):
        await _jobs(store, 1)
    async with store.engine.connect() as connection:
        for table in (JobRow, JobEventRow, OutboxRow):
            count = await connection.scalar(select(func.count()).select_from(table))
            assert count == 0, table.__tablename__


async def test_relays_on_four_replicas_send_every_event_exactly_once(
    stores: list[JobStore], executor: stack.Service
) -> None:
    ids = await _jobs(stores[0], 120)
    clients = [RecordingClient(executor.url) for _ in stores]
    relays = [
        EventSender(client, store, batch=7, check_again_after=NEVER_AGAIN)
        for client, store in zip(clients, stores, strict=True)
    ]
    for _ in range(3):
        await asyncio.gather(*(relay.relay_once() for relay in relays))
        await asyncio.gather(
            *(relay.send_job_event(i) for relay in relays for i in ids[:10])
        )

    sent = Counter(event_id for client in clients for event_id in client.sent)
    assert set(sent) == set(ids)
    assert set(sent.values()) == {1}, [i for i, n in sent.items() if n > 1]
    # More than one relay did the work.
    assert sum(1 for client in clients if client.sent) > 1
    assert await _pending(stores[0]) == 0
    job = await stores[1].get_job(ids[0])
    assert job.event_sent


async def test_events_a_dead_relay_held_are_sent_once_its_lease_ends(
    stores: list[JobStore], executor: stack.Service
) -> None:
    ids = await _jobs(stores[0], 5)
    # A replica claims the events, then dies before sending them.
    held = await stores[0].claim_events(lease=timedelta(seconds=1))
    assert {event.id for event in held} == set(ids)

    other = RecordingClient(executor.url)
    relay = EventSender(other, stores[1], check_again_after=NEVER_AGAIN)
    assert await relay.relay_once() == 0  # still leased: not sent twice
    await asyncio.sleep(1.5)
    assert await relay.relay_once() == 5
    assert sorted(other.sent) == sorted(ids)
    assert await _pending(stores[1]) == 0


async def test_a_failed_send_is_retried_after_a_backoff(
    stores: list[JobStore], executor: stack.Service
) -> None:
    [job_id] = await _jobs(stores[0], 1)
    down = RecordingClient(f"http://{stack.LOOPBACK}:{stack.free_port()}")
    failing = EventSender(down, stores[0], check_again_after=NEVER_AGAIN)
    assert await failing.relay_once() == 0
    async with stores[0].engine.connect() as connection:
        row = (await connection.execute(select(OutboxRow))).one()
    assert row.attempts == 1
    assert row.sent_at is None
    assert row.last_error

    up = RecordingClient(executor.url)
    relay = EventSender(up, stores[1], check_again_after=NEVER_AGAIN)
    assert await relay.relay_once() == 0  # backing off
    await asyncio.sleep(1.5)  # the first backoff is one second
    assert await relay.relay_once() == 1
    assert up.sent == [job_id]


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An address that accepts connections and never answers: a send to it
    hangs until the sender gives up (the client's timeout is 30 s)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((stack.LOOPBACK, 0))
        sock.listen(64)
        yield f"http://{stack.LOOPBACK}:{sock.getsockname()[1]}"


def _outbox_attempts(store_url: str, job_id: str) -> int:
    async def read() -> int:
        store = await open_store(store_url, migrate=False)
        try:
            async with store.engine.connect() as connection:
                value = await connection.scalar(
                    select(OutboxRow.attempts).where(OutboxRow.id == job_id)
                )
                return int(value or 0)
        finally:
            await store.close()

    return asyncio.run(read())


def test_a_backend_killed_between_commit_and_send_runs_the_job_after_restart(
    database_url: str, tmp_path: Path, black_hole: str
) -> None:
    lease = {"OUTBOX_LEASE_SECONDS": "2"}
    first = stack.start_backend(
        executor_url=black_hole,
        database_url=database_url,
        log_path=tmp_path / "first.log",
        env=lease,
    )
    try:
        running = Stack(executor=None, backend=first, home=tmp_path)  # type: ignore[arg-type]
        job_id = running.submit("Committed, then the backend died mid-send.")
        # The send is in flight (claimed, hanging on the black hole) ...
        deadline = time.monotonic() + 30
        while _outbox_attempts(database_url, job_id) == 0:
            assert time.monotonic() < deadline, first.log_tail()
            time.sleep(0.05)
        # ... when the backend dies.
        first.kill()
    finally:
        first.stop()

    # Restarted, and with an executor that answers this time.
    running = start_stack(tmp_path, database_url=database_url, backend_env=lease)
    try:
        job = running.wait(job_id, timeout=90)
        assert job["status"] == "succeeded", job
        assert len(running.runs_of(job_id)) == 1
    finally:
        running.backend.stop()
        running.executor.stop()
