"""The outbox: events written with the change that calls for them, then
claimed, sent and marked by the relay.

Any number of relays (one per backend replica) may work on one database. A
relay claims rows before it sends them: one UPDATE moves their
`available_at` past a lease and returns exactly the rows it moved. On
PostgreSQL the rows are picked with FOR UPDATE SKIP LOCKED, so relays take
disjoint batches without waiting on each other; on SQLite the UPDATE runs
under the database's single write lock, which gives the same result. A relay
that dies holding a claim only delays its rows until the lease runs out;
another relay then sends them. So every row is sent at least once, and more
than once only after a lost answer or an expired lease, which the event id
makes harmless.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from backend.store.models import JobRow, OutboxRow

SUMMARY_REQUESTED = "summary/requested"

# Longest wait before a failed send is tried again.
MAX_BACKOFF = timedelta(seconds=60)


@dataclass(frozen=True)
class PendingEvent:
    id: str
    job_id: str
    name: str
    data: dict[str, Any]
    # How many times a relay has taken this row, this time included.
    attempt: int


def job_requested(job_id: str, now: datetime) -> OutboxRow:
    """The `summary/requested` row for a new job; its id is the job's."""
    return OutboxRow(
        id=job_id,
        job_id=job_id,
        name=SUMMARY_REQUESTED,
        data={"job_id": job_id},
        created_at=now,
        available_at=now,
        attempts=0,
    )


def _due(now: datetime) -> ColumnElement[bool]:
    # A sent row comes back only while its job is still queued: an event that
    # reached the executor before it knew the function starts no run.
    still_queued = exists().where(
        JobRow.id == OutboxRow.job_id, JobRow.status == "queued"
    )
    return and_(
        OutboxRow.available_at <= now,
        or_(OutboxRow.sent_at.is_(None), still_queued),
    )


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    limit: int,
    event_id: str | None = None,
) -> list[PendingEvent]:
    """Take up to `limit` due rows (or just `event_id`) for `lease`."""
    picked = (
        select(OutboxRow.id)
        .where(_due(now))
        .order_by(OutboxRow.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxRow)
    )
    if event_id is not None:
        picked = picked.where(OutboxRow.id == event_id)
    found = await session.execute(
        update(OutboxRow)
        # Re-checked here: on SQLite another relay may have claimed a row
        # between the sub-select and this update's write lock.
        .where(OutboxRow.id.in_(picked.scalar_subquery()), _due(now))
        .values(available_at=now + lease, attempts=OutboxRow.attempts + 1)
        .returning(
            OutboxRow.id,
            OutboxRow.job_id,
            OutboxRow.name,
            OutboxRow.data,
            OutboxRow.attempts,
        )
        .execution_options(synchronize_session=False)
    )
    return [
        PendingEvent(id=id_, job_id=job_id, name=name, data=dict(data), attempt=n)
        for id_, job_id, name, data, n in found.all()
    ]


async def mark_sent(
    session: AsyncSession,
    events: Sequence[PendingEvent],
    *,
    now: datetime,
    check_again_after: timedelta,
) -> None:
    ids = [event.id for event in events]
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(ids))
        .values(
            sent_at=now,
            last_error=None,
            available_at=now + check_again_after,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(JobRow)
        .where(
            JobRow.id.in_([event.job_id for event in events]),
            JobRow.event_sent_at.is_(None),
        )
        .values(event_sent_at=now)
        .execution_options(synchronize_session=False)
    )


async def mark_failed(
    session: AsyncSession,
    events: Sequence[PendingEvent],
    reason: str,
    *,
    now: datetime,
) -> None:
    for event in events:
        backoff = min(timedelta(seconds=2 ** (event.attempt - 1)), MAX_BACKOFF)
        await session.execute(
            update(OutboxRow)
            .where(OutboxRow.id == event.id)
            .values(available_at=now + backoff, last_error=reason[:2000])
            .execution_options(synchronize_session=False)
        )
