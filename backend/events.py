"""Sending what the outbox holds to the executor, from every replica.

A new job's `summary/requested` row is committed with the job. The API asks
for it to be sent as soon as it has answered (`send_job_event`); the relay
loop sends whatever is still due: rows whose send failed (after a backoff),
rows a crashed replica had claimed (after their lease), and rows the
reconciler handed back because the executor has no run for them (one that
had not synced the function yet drops the event; see backend.reconcile).
The event id is the job id, so a repeated send never starts a second run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import inngest

from backend.store import JobStore
from backend.store.outbox import SUMMARY_REQUESTED, PendingEvent

log = logging.getLogger("digest.backend.events")

CANCEL_REQUESTED = "summary/cancel.requested"

__all__ = ["CANCEL_REQUESTED", "SUMMARY_REQUESTED", "EventSender"]


class EventSender:
    def __init__(
        self,
        client: inngest.Inngest,
        store: JobStore,
        *,
        relay_every: float = 1.0,
        lease: timedelta = timedelta(seconds=30),
        check_again_after: timedelta = timedelta(seconds=10),
        batch: int = 100,
    ) -> None:
        self._client = client
        self._store = store
        self._relay_every = relay_every
        self._lease = lease
        self._check_again_after = check_again_after
        self._batch = batch

    async def send_job_event(self, job_id: str) -> bool:
        """Send the job's event now, unless another relay has it in hand.

        Runs after the answer has gone out, so it never raises: with the
        database away the row stays pending and the relay sends it later.
        """
        try:
            claimed = await self._store.claim_events(
                lease=self._lease, limit=1, event_id=job_id
            )
            return bool(claimed) and await self._send(claimed)
        except Exception as exc:
            log.warning("job %s: event left to the relay (%s)", job_id, exc)
            return False

    async def send_cancel_event(self, job_id: str) -> bool:
        """Ask the executor to stop the job's run.

        Not relayed when it fails: the job is already cancelled in the store,
        and the run's next step sees that and stops.
        """
        event = inngest.Event(
            name=CANCEL_REQUESTED, id=f"cancel-{job_id}", data={"job_id": job_id}
        )
        try:
            await self._client.send(event)
        except Exception as exc:
            log.warning("job %s: cancel event not sent (%s)", job_id, exc)
            return False
        return True

    async def _send(self, events: Sequence[PendingEvent]) -> bool:
        batch = [
            inngest.Event(name=event.name, id=event.id, data=event.data)
            for event in events
        ]
        try:
            executor_ids = await self._client.send(batch)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning(
                "%d event(s) not sent, will retry (first: job %s, attempt %d): %s",
                len(events),
                events[0].job_id,
                events[0].attempt,
                reason,
            )
            await self._store.events_not_sent(events, reason)
            return False
        await self._store.events_sent(
            events, executor_ids, check_again_after=self._check_again_after
        )
        log.debug("%d event(s) sent (first: job %s)", len(events), events[0].job_id)
        return True

    async def relay_once(self) -> int:
        """Send the outbox rows that are due; return how many went out."""
        sent = 0
        while True:
            claimed = await self._store.claim_events(
                lease=self._lease, limit=self._batch
            )
            if not claimed or not await self._send(claimed):
                return sent
            sent += len(claimed)
            if len(claimed) < self._batch:
                return sent

    async def relay_forever(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
                if sent:
                    log.info("relay sent %d pending event(s)", sent)
            except Exception:
                log.exception("relay pass failed; trying again shortly")
            await asyncio.sleep(self._relay_every)
