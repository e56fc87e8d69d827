"""Live updates across backend replicas.

A client follows a job's events on replica A while the job's function runs
behind replica B. On PostgreSQL the news travels by LISTEN/NOTIFY; on SQLite
writes in the stream's own process wake it through an in-process channel,
and writes from other processes are found by re-reading. Whichever way, a
client that misses a notification still reaches the job's end.

The tests that prove a notification path set JOB_STREAM_REREAD_SECONDS far
beyond their deadline, so only that path can deliver the events in time.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from digest import stack
from tests import pg
from tests.conftest import CORPUS, Stack, start_stack

NO_REREAD = "600"
DEADLINE = 90.0


@dataclass
class Replicas:
    executor: stack.Service
    a: Stack  # API only: the client talks to this one
    b: stack.Service  # serves the functions the executor calls

    def stop(self) -> None:
        self.a.backend.stop()
        self.b.stop()
        self.executor.stop()


def start_replicas(home: Path, database_url: str, reread: str) -> Replicas:
    env = {"JOB_STREAM_REREAD_SECONDS": reread}
    b = start_stack(home / "b", database_url=database_url, backend_env=env)
    a = stack.start_backend(
        executor_url=b.executor.url,
        database_url=database_url,
        log_path=home / "a.log",
        env={**env, "SERVE_FUNCTIONS": "false"},
    )
    return Replicas(executor=b.executor, a=Stack(b.executor, a, home), b=b.backend)


def follow(running: Stack, job_id: str) -> list[tuple[str, int, dict[str, object]]]:
    """The job's events from its start to its end, failing after DEADLINE
    (heartbeats keep the connection itself alive for ever)."""
    deadline = time.monotonic() + DEADLINE
    url = f"{running.backend.url}/api/summaries/{job_id}/events"
    headers = {**running.auth, "Last-Event-ID": "0"}
    events: list[tuple[str, int, dict[str, object]]] = []
    fields: dict[str, str] = {}
    with httpx.stream("GET", url, headers=headers, timeout=30) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            assert time.monotonic() < deadline, f"stream stalled after {events[-1:]}"
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
                continue
            if "data" in fields:
                events.append(
                    (fields["event"], int(fields["id"]), json.loads(fields["data"]))
                )
            fields = {}
    return events


def assert_whole_story(events: list[tuple[str, int, dict[str, object]]]) -> None:
    kinds = [kind for kind, _, _ in events]
    assert kinds[:2] == ["status", "status"], kinds
    assert kinds[-1] == "completed", kinds
    assert set(kinds[2:-1]) == {"progress"}, kinds
    assert [seq for _, seq, _ in events] == list(range(1, len(events) + 1))
    assert events[-1][2]["sentences"]


def _document() -> str:
    return "\n\n".join([(CORPUS / "pep-0008.rst").read_text(encoding="utf-8")] * 2)


@pytest.fixture
def pg_database() -> Iterator[str]:
    with pg.temporary_database() as url:
        yield url


def test_postgres_notify_carries_progress_from_b_to_a(
    pg_database: str, tmp_path: Path
) -> None:
    replicas = start_replicas(tmp_path, pg_database, reread=NO_REREAD)
    try:
        job_id = replicas.a.submit(_document())
        assert_whole_story(follow(replicas.a, job_id))
    finally:
        replicas.stop()


def test_sqlite_replicas_reach_the_end_by_rereading(tmp_path: Path) -> None:
    # No notification crosses processes on SQLite: A learns only by reading.
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'digest.db'}"
    replicas = start_replicas(tmp_path, database_url, reread="0.3")
    try:
        job_id = replicas.a.submit(_document())
        assert_whole_story(follow(replicas.a, job_id))
    finally:
        replicas.stop()


def test_sqlite_in_process_channel_wakes_the_stream(tmp_path: Path) -> None:
    env = {"JOB_STREAM_REREAD_SECONDS": NO_REREAD}
    running = start_stack(tmp_path, backend_env=env)
    try:
        job_id = running.submit(_document())
        assert_whole_story(follow(running, job_id))
    finally:
        running.backend.stop()
        running.executor.stop()


async def _cut_listeners(admin_url: str, database: str) -> int:
    connection = await asyncpg.connect(admin_url)
    try:
        rows = await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND query LIKE 'LISTEN%'",
            database,
        )
        return len(rows)
    finally:
        await connection.close()


def test_a_stream_whose_listen_connection_keeps_dropping_still_ends(
    pg_database: str, tmp_path: Path
) -> None:
    """Notifications sent while A's LISTEN connection is down are lost; A
    re-reads when it listens again, and the client misses nothing."""
    replicas = start_replicas(tmp_path, pg_database, reread=NO_REREAD)
    database = make_url(pg_database).database
    assert database
    cut = 0
    done = threading.Event()

    def keep_cutting() -> None:
        nonlocal cut
        while not done.wait(0.4):
            cut += asyncio.run(_cut_listeners(pg.ADMIN_URL, database))

    cutter = threading.Thread(target=keep_cutting, name="cut-listeners")
    try:
        job_id = replicas.a.submit(_document())
        cutter.start()
        events = follow(replicas.a, job_id)
        done.set()
        cutter.join()
        assert_whole_story(events)
        assert cut > 0
    finally:
        done.set()
        replicas.stop()
