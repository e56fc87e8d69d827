"""The job store: the one place that reads and writes summary jobs.

Both the HTTP API and the step functions use this module; the functions
never go through the API to reach a job.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    DateTime,
    ScalarSelect,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from ulid import ULID

from backend.store import outbox
from backend.store.changes import (
    CHANGED_JOBS,
    JobEvent,
    change_job,
    events_after,
)
from backend.store.engine import asyncpg_dsn, is_postgres
from backend.store.models import JobChunkRow, JobRow, JobStepRow
from backend.store.notify import JobChanges, PostgresChanges
from backend.store.outbox import PendingEvent, SentEvent

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# Steps every job goes through besides one step per chunk; the total grows
# once `split` knows how many chunks there are.
FIXED_STEPS = ("load", "split", "combine", "save")


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    step: str | None


@dataclass(frozen=True)
class Job:
    id: str
    owner: str
    title: str | None
    status: JobStatus
    source_format: str
    source_url: str | None
    max_sentences: int
    progress: Progress
    summary: list[str] | None
    error: str | None
    event_sent: bool
    created_at: datetime
    updated_at: datetime
    # Sequence number of the job's latest event; 0 before any.
    version: int
    # Who wrote the summary (`extractive`, `llm`) and with which model.
    summarizer: str | None = None
    summary_model: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class JobStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        url = engine.url.render_as_string(hide_password=False)
        self.changes: JobChanges = (
            PostgresChanges(asyncpg_dsn(url)) if is_postgres(url) else JobChanges()
        )

    async def close(self) -> None:
        await self.changes.close()
        await self.engine.dispose()

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A transaction; once it commits, this process's streams of the jobs
        it changed are woken (other processes hear of it by NOTIFY)."""
        async with self._sessions.begin() as session:
            yield session
        for job_id in session.info.pop(CHANGED_JOBS, ()):
            self.changes.publish(job_id)

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        async with self._sessions() as session:
            await session.execute(select(1))

    def room_for_writes(self) -> int | None:
        """Bytes free on the disk of a SQLite file, or None where this
        process cannot tell (PostgreSQL's disk is on its server).

        A full disk still answers reads, so a query alone would call it
        ready while every write is refused."""
        if self.engine.url.get_backend_name() != "sqlite":
            return None
        name = self.engine.url.database
        if not name or name == ":memory:":
            return None
        folder = Path(name).resolve().parent
        try:
            disk = os.statvfs(folder)
        except OSError:
            return None
        return disk.f_bavail * disk.f_frsize

    # -- creating and reading ------------------------------------------------

    async def create_job(
        self,
        *,
        owner: str,
        text: str,
        source_format: str,
        max_sentences: int,
        title: str | None,
        source_url: str | None = None,
    ) -> Job:
        """A queued job for `text`, or for `source_url` (then `text` is "").

        Its `summary/requested` event is written to the outbox in the same
        transaction: there is no job without its event, nor the reverse.
        """
        now = _now()
        row = JobRow(
            id=str(ULID()),
            owner=owner,
            title=title,
            status="queued",
            source_text=text,
            source_format=source_format,
            source_url=source_url,
            max_sentences=max_sentences,
            progress_total=len(FIXED_STEPS),
            progress_step=None,
            created_at=now,
            updated_at=now,
            version=0,
        )
        async with self._write() as session:
            session.add(row)
            await session.flush()
            session.add(outbox.job_requested(row.id, now))
            await change_job(session, row.id, "status")
            # Read back on the same connection: a second checkout after the
            # commit can time out under load, and the caller would then be
            # told the job failed when it exists.
            await session.refresh(row)
            job = _to_job(row, done=0)
        return job

    async def get_job(self, job_id: str) -> Job:
        # One statement: the step's name and the count of finished steps
        # then come from the same moment, as they were written together.
        query = select(JobRow, _steps_done_of_row()).where(JobRow.id == job_id)
        async with self._sessions() as session:
            found = (await session.execute(query)).one_or_none()
            if found is None:
                raise JobNotFound(job_id)
            row, done = found
            return _to_job(row, done=done)

    async def list_jobs(
        self,
        owner: str,
        *,
        limit: int,
        status: str | None = None,
        before: tuple[datetime, str] | None = None,
    ) -> list[Job]:
        """The owner's jobs, newest first, from just after `before`
        (the created_at and id of the last job of the previous page)."""
        query = select(JobRow, _steps_done_of_row()).where(JobRow.owner == owner)
        if status is not None:
            query = query.where(JobRow.status == status)
        if before is not None:
            created, last_id = before
            query = query.where(
                or_(
                    JobRow.created_at < created,
                    and_(JobRow.created_at == created, JobRow.id < last_id),
                )
            )
        query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        async with self._sessions() as session:
            found = await session.execute(query)
            return [_to_job(row, done=count) for row, count in found.all()]

    async def events_after(self, job_id: str, seq: int) -> list[JobEvent]:
        """The job's logged changes with a sequence number above `seq`."""
        async with self._sessions() as session:
            return await events_after(session, job_id, seq)

    async def set_source(self, job_id: str, text: str, source_format: str) -> None:
        """Replace the document to summarise (a fetched or converted source)."""
        await self._update(job_id, source_text=text, source_format=source_format)

    async def get_source(self, job_id: str) -> tuple[str, str]:
        """The document's text and its declared format."""
        async with self._sessions() as session:
            found = await session.execute(
                select(JobRow.source_text, JobRow.source_format).where(
                    JobRow.id == job_id
                )
            )
            pair = found.one_or_none()
            if pair is None:
                raise JobNotFound(job_id)
            return pair[0], pair[1]

    # -- the outbox --------------------------------------------------------

    async def claim_events(
        self, *, lease: timedelta, limit: int = 100, event_id: str | None = None
    ) -> list[PendingEvent]:
        """Outbox rows due to be sent, taken for `lease` (see outbox.claim)."""
        async with self._sessions.begin() as session:
            return await outbox.claim(
                session, now=_now(), lease=lease, limit=limit, event_id=event_id
            )

    async def events_sent(
        self,
        events: Sequence[PendingEvent],
        executor_ids: Sequence[str] = (),
        *,
        check_again_after: timedelta,
    ) -> None:
        """Mark `events` sent; the reconciler first asks about their runs
        `check_again_after` later (see outbox.recheck_delay)."""
        if events:
            async with self._sessions.begin() as session:
                await outbox.mark_sent(
                    session,
                    events,
                    executor_ids,
                    now=_now(),
                    check_again_after=check_again_after,
                )

    async def events_not_sent(
        self, events: Sequence[PendingEvent], reason: str
    ) -> None:
        if events:
            async with self._sessions.begin() as session:
                await outbox.mark_failed(session, events, reason, now=_now())

    async def claim_checks(
        self, *, lease: timedelta, quiet_for: timedelta, limit: int = 50
    ) -> list[SentEvent]:
        """Sent events whose job may need reconciling (see outbox.claim_checks)."""
        now = _now()
        async with self._sessions.begin() as session:
            return await outbox.claim_checks(
                session, now=now, lease=lease, quiet_since=now - quiet_for, limit=limit
            )

    async def check_later(self, event_ids: Sequence[str], after: timedelta) -> None:
        if event_ids:
            async with self._sessions.begin() as session:
                await outbox.check_later(session, event_ids, _now() + after)

    async def send_again(self, event_id: str) -> bool:
        async with self._sessions.begin() as session:
            return await outbox.send_again(session, event_id, now=_now())

    # -- retention ----------------------------------------------------------

    async def delete_jobs_changed_before(
        self, cutoff: datetime, *, batch: int = 500
    ) -> int:
        """Delete the jobs whose last change is older than `cutoff`, with
        their steps, chunks, event log and outbox rows; how many went.

        Batches keep each transaction short beside the live traffic.
        """
        deleted = 0
        while True:
            async with self._sessions.begin() as session:
                found = await session.execute(
                    select(JobRow.id)
                    .where(JobRow.updated_at < cutoff)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
                ids = list(found.scalars())
                if ids:
                    # The foreign keys cascade to the job's other rows.
                    await session.execute(delete(JobRow).where(JobRow.id.in_(ids)))
            deleted += len(ids)
            if len(ids) < batch:
                return deleted

    # -- progress, written by the step functions -----------------------------

    async def mark_running(self, job_id: str) -> None:
        async with self._write() as session:
            await _require(session, job_id)
            await change_job(
                session,
                job_id,
                "status",
                JobRow.status == "queued",
                status="running",
                updated_at=_now(),
            )

    async def finish_step(
        self, job_id: str, step: str, *, total: int | None = None
    ) -> None:
        """Record that `step` finished; a repeat of the same step counts once."""
        values: dict[str, Any] = {"progress_step": step, "updated_at": _now()}
        if total is not None:
            values["progress_total"] = total
        try:
            async with self._write() as session:
                await _require(session, job_id)
                # One statement, so that a cancel committed while this step
                # waited for the write lock is seen: a step that ends after
                # its job ended changes nothing a client sees, neither the
                # progress count nor the events (`cancelled` stays the last).
                counted = await session.execute(
                    insert(JobStepRow).from_select(
                        ["job_id", "step", "finished_at"],
                        select(
                            literal(job_id),
                            literal(step),
                            literal(_now(), type_=DateTime(timezone=True)),
                        ).where(
                            exists().where(
                                JobRow.id == job_id,
                                JobRow.status.not_in(TERMINAL_STATUSES),
                            )
                        ),
                    )
                )
                if counted.rowcount == 0:  # type: ignore[attr-defined]
                    return
                await change_job(
                    session,
                    job_id,
                    "progress",
                    JobRow.status.not_in(TERMINAL_STATUSES),
                    **values,
                )
        except IntegrityError:
            # The step ran again after its first answer was lost; it has
            # already been counted.
            return

    async def save_chunks(
        self, job_id: str, chunks: Sequence[Sequence[Mapping[str, Any]]]
    ) -> None:
        async with self._write() as session:
            await _require(session, job_id)
            await session.execute(
                delete(JobChunkRow).where(JobChunkRow.job_id == job_id)
            )
            session.add_all(
                JobChunkRow(
                    job_id=job_id,
                    position=index,
                    sentences=[dict(item) for item in sentences],
                )
                for index, sentences in enumerate(chunks)
            )

    async def load_chunk(self, job_id: str, position: int) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            row = await session.get(JobChunkRow, (job_id, position))
            if row is None:
                raise JobNotFound(f"{job_id}/chunk/{position}")
            return list(row.sentences)

    async def succeed(
        self,
        job_id: str,
        summary: list[str],
        *,
        summarizer: str | None = None,
        model: str | None = None,
    ) -> None:
        async with self._write() as session:
            await _require(session, job_id)
            await change_job(
                session,
                job_id,
                "completed",
                JobRow.status.not_in(TERMINAL_STATUSES),
                status="succeeded",
                summary=summary,
                summarizer=summarizer,
                summary_model=model,
                updated_at=_now(),
            )
            # The chunks were only needed while the job ran.
            await session.execute(
                delete(JobChunkRow).where(JobChunkRow.job_id == job_id)
            )

    async def fail(self, job_id: str, reason: str) -> bool:
        """Mark the job failed unless it already ended; whether it changed."""
        async with self._write() as session:
            await _require(session, job_id)
            return await change_job(
                session,
                job_id,
                "failed",
                JobRow.status.not_in(TERMINAL_STATUSES),
                status="failed",
                error=reason,
                updated_at=_now(),
            )

    async def cancel(self, job_id: str) -> bool:
        """Mark the job cancelled unless it already ended; whether it changed.

        The step functions' succeed() and fail() leave a cancelled job as it
        is, so the job ends cancelled whether or not the run stops at once.
        """
        async with self._write() as session:
            await _require(session, job_id)
            changed = await change_job(
                session,
                job_id,
                "cancelled",
                JobRow.status.not_in(TERMINAL_STATUSES),
                status="cancelled",
                updated_at=_now(),
            )
            if changed:
                await session.execute(
                    delete(JobChunkRow).where(JobChunkRow.job_id == job_id)
                )
            return changed

    async def _update(self, job_id: str, **values: Any) -> None:
        async with self._write() as session:
            await _require(session, job_id)
            await session.execute(
                update(JobRow).where(JobRow.id == job_id).values(**values)
            )


async def _require(session: AsyncSession, job_id: str) -> None:
    """Raise JobNotFound, or lock the job's row until the transaction ends.

    The lock makes writers of one job take turns on PostgreSQL, as SQLite's
    single write lock does: a step finishing as the job is cancelled either
    counts before the cancel or not at all. (SQLite renders no FOR UPDATE.)
    """
    found = await session.execute(
        select(JobRow.id).where(JobRow.id == job_id).with_for_update()
    )
    if found.scalar_one_or_none() is None:
        raise JobNotFound(job_id)


def _steps_done_of_row() -> ScalarSelect[int]:
    """The finished steps of the job row selected beside it."""
    return (
        select(func.count())
        .select_from(JobStepRow)
        .where(JobStepRow.job_id == JobRow.id)
        .scalar_subquery()
    )


def _to_job(row: JobRow, *, done: int) -> Job:
    return Job(
        id=row.id,
        owner=row.owner,
        title=row.title,
        status=row.status,  # type: ignore[arg-type]
        source_format=row.source_format,
        source_url=row.source_url,
        max_sentences=row.max_sentences,
        progress=Progress(done=done, total=row.progress_total, step=row.progress_step),
        summary=list(row.summary) if row.summary is not None else None,
        error=row.error,
        event_sent=row.event_sent_at is not None,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        version=row.version,
        summarizer=row.summarizer,
        summary_model=row.summary_model,
    )
