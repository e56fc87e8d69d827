"""The database failing under the API: 503 with a retry hint, recovery
without a restart, and no job lost that the API accepted.

PostgreSQL faults run on a private server the test starts itself
(tests/pg_instance.py), never on the shared one. The full disk for SQLite
is a real one: a 4 MiB tmpfs holding the database file, filled with a
file of padding and freed by deleting it. Mounting needs root (or
CAP_SYS_ADMIN); without it that test is skipped, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import exc as sa_exc

from backend.dbfaults import install_database_fault_handlers
from backend.errors import install_error_handlers
from digest import stack
from tests.conftest import Stack
from tests.pg_instance import PgInstance, pg_instance

# A step failing while the database is away must not spend all four of its
# attempts (7.5 s apart at most) in outages: each outage lasts about two
# seconds, and the next begins six seconds after the last one ended.
RETRY_INTERVAL = 2.5
OUTAGE_SECONDS = 2.0
BETWEEN_OUTAGES = 6.0
TEXT = (
    "A database may restart at any moment. The API must say so plainly. "
    "Clients try again when told to. No accepted job may be lost."
)


def start_stack_on(home: Path, database_url: str) -> Stack:
    started = stack.start_local_stack(
        home, retry_interval=RETRY_INTERVAL, database_url=database_url
    )
    return Stack(executor=started.executor, backend=started.backend, home=home)


def assert_retry_hint(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) > 0
    error = answer.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["message"]


@dataclass
class Submitter:
    """Posts jobs in a loop on a thread of its own and keeps every answer."""

    running: Stack
    accepted: list[str] = field(default_factory=list)
    refused: list[httpx.Response] = field(default_factory=list)
    other: list[httpx.Response] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        with self.running.api as http:
            while not self._stop.wait(0.05):
                try:
                    answer = http.post("/api/summaries", json={"text": TEXT})
                except httpx.HTTPError as exc:
                    self.unanswered.append(repr(exc))
                    continue
                if answer.status_code == 202:
                    self.accepted.append(answer.json()["id"])
                elif answer.status_code == 503:
                    self.refused.append(answer)
                else:
                    self.other.append(answer)

    def __enter__(self) -> Submitter:
        self._thread = threading.Thread(target=self._loop, name="submitter")
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)


def assert_all_succeed(running: Stack, job_ids: list[str]) -> None:
    for job_id in job_ids:
        job = running.wait(job_id, timeout=180)
        assert job["status"] == "succeeded", job


# -- PostgreSQL ---------------------------------------------------------------


@dataclass
class PgStack:
    pg: PgInstance
    running: Stack


@pytest.fixture
def pg_stack(tmp_path: Path) -> Iterator[PgStack]:
    with pg_instance() as pg:
        running = start_stack_on(tmp_path, pg.url)
        try:
            yield PgStack(pg, running)
        finally:
            running.backend.stop()
            running.executor.stop()


def _readiness(running: Stack) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{running.backend.url}/readyz", timeout=30)
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


def test_database_restarting_under_load(pg_stack: PgStack) -> None:
    pg, running = pg_stack.pg, pg_stack.running
    backend_pid = running.backend.pid
    with Submitter(running) as submitter:
        time.sleep(1.5)
        for mode in ("fast", "immediate"):
            # A clean shutdown, then a crash (recovered from its WAL).
            pg.stop(mode)
            time.sleep(OUTAGE_SECONDS / 2)
            status, body = _readiness(running)
            assert status == 503, body
            assert body["checks"]["database"] != "ok", body
            time.sleep(OUTAGE_SECONDS / 2)
            pg.start()
            time.sleep(BETWEEN_OUTAGES)

    assert not submitter.unanswered, submitter.unanswered
    assert not submitter.other, [(a.status_code, a.text) for a in submitter.other]
    assert submitter.refused, "no request met the outage"
    for answer in submitter.refused:
        assert_retry_hint(answer)

    # The same backend process answers again, and is ready.
    assert running.backend.alive()
    assert running.backend.pid == backend_pid
    assert _readiness(running)[0] == 200
    after = running.submit(TEXT)
    assert_all_succeed(running, [*submitter.accepted, after])

    stored = set(pg.psql("SELECT id FROM jobs").split())
    assert set(submitter.accepted) <= stored


async def _waiting_on_lock(connection: asyncpg.Connection, count: int) -> None:
    """Return once `count` sessions wait for a lock. `connection` must not be
    in a transaction: the statistics views stay as they were when a
    transaction first read them."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid <> pg_backend_pid()"
        )
        if len(rows) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} requests ever waited on the lock")


async def test_connection_lost_in_the_middle_of_a_request(pg_stack: PgStack) -> None:
    pg, running = pg_stack.pg, pg_stack.running
    earlier = running.submit(TEXT)
    assert_all_succeed(running, [earlier])

    # Requests that reach the jobs table wait behind this lock; their
    # connections are then ended by the server, as a failover or an
    # operator would, while the requests are in the middle of their query.
    holder = await asyncpg.connect(pg.dsn)
    watcher = await asyncpg.connect(pg.dsn)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(
            base_url=running.backend.url, headers=running.auth, timeout=60
        ) as http:
            reads = [http.get(f"/api/summaries/{earlier}") for _ in range(3)]
            writes = [
                http.post("/api/summaries", json={"text": TEXT}) for _ in range(3)
            ]
            pending = asyncio.gather(*reads, *writes)
            await _waiting_on_lock(watcher, 6)
            # The lock outlives the requests, so each can only end by losing
            # its connection; a session that starts waiting later (the
            # relay's) is ended too.
            while not pending.done():
                await watcher.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
                await asyncio.wait([pending], timeout=0.2)
            answers = pending.result()
        await transaction.rollback()
    finally:
        await holder.close()
        await watcher.close()

    assert [a.status_code for a in answers] == [503] * 6, [a.text for a in answers]
    for answer in answers:
        assert_retry_hint(answer)

    # Recovered: the pool replaced the dropped connections by itself.
    assert running.job(earlier)["status"] == "succeeded"
    after = running.submit(TEXT)
    assert_all_succeed(running, [after])


# -- SQLite on a full disk ----------------------------------------------------

DISK_SIZE = "4m"


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for this test, or a skip saying why not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "digest-test", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(
            "a full disk needs a tiny filesystem, and mounting tmpfs needs root "
            f"or CAP_SYS_ADMIN: {done.stderr.strip()}"
        )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write padding until the filesystem refuses; return the padding file."""
    padding = disk / "padding"
    block = b"\0" * 65536
    with padding.open("wb") as out:
        while _wrote(out, block):
            pass
    return padding


def _wrote(out: BinaryIO, block: bytes) -> bool:
    try:
        out.write(block)
        out.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


def test_sqlite_disk_full(tmp_path: Path, tiny_disk: Path) -> None:
    running = start_stack_on(
        tmp_path / "stack", f"sqlite+aiosqlite:///{tiny_disk}/j.db"
    )
    try:
        before = [running.submit(TEXT) for _ in range(3)]
        assert_all_succeed(running, before)
        padding = fill(tiny_disk)

        # SQLite reuses the space its write-ahead log already holds, so the
        # first writes may still fit; larger documents soon do not.
        accepted_while_full: list[str] = []
        refused: httpx.Response | None = None
        with running.api as http:
            for _ in range(100):
                answer = http.post("/api/summaries", json={"text": TEXT * 200})
                if answer.status_code == 202:
                    accepted_while_full.append(answer.json()["id"])
                    continue
                refused = answer
                break
        assert refused is not None, "the full disk never refused a write"
        assert_retry_hint(refused)
        assert "full" in refused.json()["error"]["message"]
        with running.api as http:
            for _ in range(3):
                answer = http.post("/api/summaries", json={"text": TEXT})
                if answer.status_code == 202:
                    accepted_while_full.append(answer.json()["id"])
                else:
                    assert_retry_hint(answer)

        # Readiness says writes cannot be done, though reads still answer.
        with running.api as http:
            ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert "no room for writes" in ready.json()["checks"]["database"]

        # Reading goes on while writing cannot.
        for job_id in before:
            assert running.job(job_id)["status"] == "succeeded"
        with running.api as http:
            listing = http.get("/api/summaries")
        assert listing.status_code == 200, listing.text

        padding.unlink()
        with running.api as http:
            assert http.get("/readyz").status_code == 200
        after = running.submit(TEXT)
        assert_all_succeed(running, [*before, *accepted_while_full, after])
    finally:
        running.backend.stop()
        running.executor.stop()
        with contextlib.suppress(OSError):
            (tiny_disk / "padding").unlink()


# -- what is not a passing fault ----------------------------------------------


def _app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    install_database_fault_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise error

    return app


@pytest.mark.parametrize(
    "error",
    [
        sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        ConnectionRefusedError("the executor, not the database"),
    ],
    ids=["constraint", "oserror-outside-driver"],
)
async def test_other_errors_stay_500(error: Exception) -> None:
    transport = httpx.ASGITransport(app=_app_raising(error), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal"
    assert "Retry-After" not in answer.headers
