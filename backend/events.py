"""Sending `summary/requested` to the executor, and re-sending what failed.

The job is committed before its event is sent. If the send fails the job
stays queued with its event marked unsent, and the relay loop sends it
again; so it does for a job still queued well after its event went out
(an executor that had not synced the function yet drops the event). The
event id is the job id, so a repeated send never starts a second run.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import inngest

from backend.store import JobStore

log = logging.getLogger("digest.backend.events")

SUMMARY_REQUESTED = "summary/requested"
CANCEL_REQUESTED = "summary/cancel.requested"


class EventSender:
    def __init__(
        self,
        client: inngest.Inngest,
        store: JobStore,
        *,
        relay_every: float = 2.0,
        unsent_for: timedelta = timedelta(seconds=3),
        queued_for: timedelta = timedelta(seconds=10),
    ) -> None:
        self._client = client
        self._store = store
        self._relay_every = relay_every
        self._unsent_for = unsent_for
        self._queued_for = queued_for

    async def send_job_event(self, job_id: str) -> bool:
        event = inngest.Event(
            name=SUMMARY_REQUESTED, id=job_id, data={"job_id": job_id}
        )
        try:
            await self._client.send(event)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.warning("job %s: event not sent, will retry (%s)", job_id, reason)
            await self._store.mark_event_unsent(job_id, reason)
            return False
        await self._store.mark_event_sent(job_id)
        log.debug("job %s: event sent", job_id)
        return True

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

    async def relay_once(self) -> int:
        """Send the events that must go (again); return how many went out."""
        sent = 0
        due = await self._store.jobs_to_send(
            unsent_for=self._unsent_for, queued_for=self._queued_for
        )
        for job_id in due:
            if await self.send_job_event(job_id):
                sent += 1
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
