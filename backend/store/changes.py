"""The per-job event log: every change a job's event stream reports.

A change and its log entry are written in the same transaction, and the
entry's `seq` comes from incrementing the job's `version` in that
transaction, so the log has no gaps and its order is the order of commits.
Each logged change also tells the job's followers (see notify.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.store.models import JobEventRow, JobRow, JobStepRow
from backend.store.notify import CHANNEL

# Key in `session.info` of the ids of the jobs a transaction logged changes
# for; the store wakes their followers in this process after the commit.
CHANGED_JOBS = "digest_changed_jobs"

EventKind = Literal["status", "progress", "completed", "failed", "cancelled"]


@dataclass(frozen=True)
class JobEvent:
    seq: int
    kind: EventKind
    status: str
    done: int
    total: int
    step: str | None

    @property
    def is_final(self) -> bool:
        return self.kind in {"completed", "failed", "cancelled"}


async def change_job(
    session: AsyncSession,
    job_id: str,
    kind: EventKind,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Apply `values` to the job if `conditions` hold, and log the change.

    Returns whether the job changed; nothing is logged when it did not.
    """
    found = await session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, *conditions)
        .values(version=JobRow.version + 1, **values)
        .returning(
            JobRow.version, JobRow.status, JobRow.progress_total, JobRow.progress_step
        )
        .execution_options(synchronize_session=False)
    )
    row = found.one_or_none()
    if row is None:
        return False
    seq, status, total, step = row
    session.add(
        JobEventRow(
            job_id=job_id,
            seq=seq,
            kind=kind,
            status=status,
            done=await steps_done(session, job_id),
            total=total,
            step=step,
        )
    )
    session.info.setdefault(CHANGED_JOBS, set()).add(job_id)
    if session.get_bind().dialect.name == "postgresql":
        # Delivered to every LISTEN connection when, and only if, this
        # transaction commits.
        await session.execute(select(func.pg_notify(CHANNEL, job_id)))
    return True


async def steps_done(session: AsyncSession, job_id: str) -> int:
    found = await session.execute(
        select(func.count()).select_from(JobStepRow).where(JobStepRow.job_id == job_id)
    )
    return int(found.scalar_one())


async def events_after(
    session: AsyncSession, job_id: str, seq: int, *, limit: int = 1000
) -> list[JobEvent]:
    found = await session.execute(
        select(JobEventRow)
        .where(JobEventRow.job_id == job_id, JobEventRow.seq > seq)
        .order_by(JobEventRow.seq)
        .limit(limit)
    )
    return [
        JobEvent(
            seq=row.seq,
            kind=row.kind,  # type: ignore[arg-type]
            status=row.status,
            done=row.done,
            total=row.total,
            step=row.step,
        )
        for row in found.scalars()
    ]
