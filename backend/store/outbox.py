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

Once a row is sent the relay is done with it. Its `available_at` then says
when the reconciler (backend.reconcile) next asks the executor how the
job's run went: soon after the first send, then less and less often.
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
# Longest wait between two checks of a sent event whose job has not started.
MAX_RECHECK = timedelta(minutes=10)
# The executor's ids kept per event: enough to find the run of any recent
# send. Older ones are dropped; a run is looked for after every send.
KEPT_EXECUTOR_IDS = 20


@dataclass(frozen=True)
class PendingEvent:
    id: str
    job_id: str
    name: str
    data: dict[str, Any]
    # How many times a relay has taken this row, this time included.
    attempt: int
    # The executor's ids for the earlier sends, oldest first.
    executor_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SentEvent:
    """A sent `summary/requested` whose job has not ended: to ask about."""

    id: str
    job_id: str
    job_status: str
    executor_ids: tuple[str, ...]

    @property
    def sends(self) -> int:
        """Sends the executor acknowledged (as far as ids were kept)."""
        return len(self.executor_ids)


def recheck_delay(first: timedelta, sends: int) -> timedelta:
    """How long after its latest send an event is asked about again:
    `first` after the first send, twice as long after each further one,
    at most MAX_RECHECK."""
    doublings = min(max(sends - 1, 0), 16)
    return min(first * (1 << doublings), MAX_RECHECK)


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
    # A sent row is the reconciler's: it sends again only when the executor
    # has no run for the event (see send_again).
    return and_(OutboxRow.available_at <= now, OutboxRow.sent_at.is_(None))


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
    # A CTE, which PostgreSQL runs once: as a plain sub-select it may be run
    # again while the update re-checks rows another relay changed, and then
    # come back short.
    taken = picked.cte("taken")
    found = await session.execute(
        update(OutboxRow)
        # Re-checked here: on SQLite another relay may have claimed a row
        # between the sub-select and this update's write lock.
        .where(OutboxRow.id.in_(select(taken.c.id)), _due(now))
        .values(available_at=now + lease, attempts=OutboxRow.attempts + 1)
        .returning(
            OutboxRow.id,
            OutboxRow.job_id,
            OutboxRow.name,
            OutboxRow.data,
            OutboxRow.attempts,
            OutboxRow.executor_event_ids,
        )
        .execution_options(synchronize_session=False)
    )
    return [
        PendingEvent(
            id=id_,
            job_id=job_id,
            name=name,
            data=dict(data),
            attempt=n,
            executor_ids=tuple(known or ()),
        )
        for id_, job_id, name, data, n, known in found.all()
    ]


async def mark_sent(
    session: AsyncSession,
    events: Sequence[PendingEvent],
    executor_ids: Sequence[str],
    *,
    now: datetime,
    check_again_after: timedelta,
) -> None:
    """Record a send; `executor_ids` are the executor's ids for `events`,
    in the same order (the SDK's send returns them so)."""
    rows = []
    for index, event in enumerate(events):
        known = list(event.executor_ids)
        if index < len(executor_ids):
            known.append(executor_ids[index])
        known = known[-KEPT_EXECUTOR_IDS:]
        rows.append(
            {
                "id": event.id,
                "sent_at": now,
                "last_error": None,
                "executor_event_ids": known,
                "available_at": now + recheck_delay(check_again_after, len(known)),
            }
        )
    # One UPDATE by primary key, run for every row.
    await session.execute(update(OutboxRow), rows)
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


# -- the reconciler's side --------------------------------------------------


def _to_check(now: datetime, quiet_since: datetime) -> ColumnElement[bool]:
    # A queued job is asked about on the row's schedule; a running one only
    # once it has also been quiet for a while (a slow run is not a lost one).
    unfinished = exists().where(
        JobRow.id == OutboxRow.job_id,
        or_(
            JobRow.status == "queued",
            and_(JobRow.status == "running", JobRow.updated_at <= quiet_since),
        ),
    )
    return and_(
        OutboxRow.name == SUMMARY_REQUESTED,
        OutboxRow.sent_at.is_not(None),
        OutboxRow.available_at <= now,
        unfinished,
    )


async def claim_checks(
    session: AsyncSession,
    *,
    now: datetime,
    lease: timedelta,
    quiet_since: datetime,
    limit: int,
) -> list[SentEvent]:
    """Take up to `limit` sent events whose unfinished job is due a check,
    for `lease`; replicas take disjoint sets, as relays do (see claim)."""
    due = _to_check(now, quiet_since)
    picked = (
        select(OutboxRow.id)
        .where(due)
        .order_by(OutboxRow.available_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=OutboxRow)
    )
    taken = picked.cte("taken")  # run once, as in claim
    found = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(select(taken.c.id)), due)
        .values(available_at=now + lease)
        .returning(
            OutboxRow.id,
            OutboxRow.job_id,
            OutboxRow.executor_event_ids,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = found.all()
    found_jobs = await session.execute(
        select(JobRow.id, JobRow.status).where(
            JobRow.id.in_([job_id for _, job_id, _ in claimed])
        )
    )
    statuses = {job_id: status for job_id, status in found_jobs.tuples()}
    return [
        SentEvent(
            id=id_,
            job_id=job_id,
            job_status=statuses.get(job_id, "queued"),
            executor_ids=tuple(known or ()),
        )
        for id_, job_id, known in claimed
    ]


async def check_later(
    session: AsyncSession, event_ids: Sequence[str], at: datetime
) -> None:
    await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id.in_(event_ids))
        .values(available_at=at)
        .execution_options(synchronize_session=False)
    )


async def send_again(session: AsyncSession, event_id: str, *, now: datetime) -> bool:
    """Hand a sent event back to the relay; False if it was not sent (then
    a relay already has it)."""
    found = await session.execute(
        update(OutboxRow)
        .where(OutboxRow.id == event_id, OutboxRow.sent_at.is_not(None))
        .values(sent_at=None, available_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(found.rowcount)  # type: ignore[attr-defined]
