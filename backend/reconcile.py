"""The reconciler: no job the store accepted stays unfinished.

The step functions record how a job ends. Sometimes they cannot: the
database was away when the run failed for good, and so was it for the
failure handler, which the SDK runs once and never retries. Sometimes they
never hear of it: a run cancelled from the executor's dashboard or its REST
API. And an executor that had not synced the function drops the event, so
no run starts at all. In each case the job would stay queued or running.

Every backend replica runs this loop. It takes the sent `summary/requested`
events whose job has not ended (a queued job on the outbox row's schedule, a
running one once it has also been quiet for RECONCILE_AFTER_SECONDS), asks
the executor for the event's runs (`GET /v1/events/{id}/runs`, which Inngest
Cloud and the official dev server answer too, keyed by the executor's own
event ids that the outbox keeps) and acts on the newest run:

- Failed or Skipped: the job fails, with the run's error as the reason;
- Cancelled: the job is cancelled;
- Completed: the job fails (the run ended without saving its summary);
- still Queued or Running: nothing, it is asked about again later;
- no run at all: the event is sent again; the next check waits twice as long
  as the one before (10 s, 20 s, 40 s ... 10 min), and after MAX_SENDS sends
  the job fails, saying the executor never ran it.

An executor that does not answer is asked again later. Replicas claim
disjoint sets of events, and every mark applies only to a job that has not
ended, so any number of replicas may reconcile one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import inngest

from backend.events import EventSender
from backend.store import JobNotFound, JobStore
from backend.store.outbox import SentEvent, recheck_delay
from digest.settings import Settings
from functions.generate_summary import readable_error

log = logging.getLogger("digest.backend.reconcile")

# Sends after which an event that never started a run fails its job. With
# the first check 10 s after a send this is about 50 minutes of trying.
MAX_SENDS = 10
# Why a run that ended without failing leaves its job failed all the same.
ENDED_WITHOUT_SUMMARY = {
    "Completed": "the run ended without saving the summary",
    "Skipped": "the executor skipped the run (a limit dropped its event)",
}


class ExecutorUnavailable(RuntimeError):
    """The executor's REST API did not give an answer to act on."""


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    output: Any
    last_error: Any


class ExecutorRuns:
    """The executor's REST API, asked which runs an event started.

    Inngest Cloud takes the signing key as a bearer; the embedded executor
    takes it too (or nothing, in dev). During a key rotation the fallback
    key is tried when the first is refused.
    """

    def __init__(
        self, api_origin: str, signing_keys: Sequence[str], *, timeout: float = 10.0
    ) -> None:
        self._http = httpx.AsyncClient(base_url=api_origin, timeout=timeout)
        self._bearers = [f"Bearer {key}" for key in signing_keys]

    async def close(self) -> None:
        await self._http.aclose()

    async def runs_of(self, executor_event_id: str) -> list[Run]:
        answer = await self._get(f"/v1/events/{executor_event_id}/runs")
        if answer.status_code == 404:
            return []
        if not answer.is_success:
            raise ExecutorUnavailable(
                f"GET {answer.request.url.path} answered {answer.status_code}: "
                f"{answer.text[:200]}"
            )
        try:
            found = answer.json()["data"]
            return [
                Run(
                    run_id=str(run["run_id"]),
                    status=str(run["status"]),
                    output=run.get("output"),
                    last_error=run.get("last_error"),
                )
                for run in found or []
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ExecutorUnavailable(
                f"unreadable runs of event {executor_event_id}: {exc!r}"
            ) from None

    async def _get(self, path: str) -> httpx.Response:
        headers = [{"Authorization": bearer} for bearer in self._bearers] or [{}]
        try:
            for header in headers:
                answer = await self._http.get(path, headers=header)
                if answer.status_code != 401:
                    break
        except httpx.HTTPError as exc:
            raise ExecutorUnavailable(f"{type(exc).__name__}: {exc}") from None
        return answer


def executor_runs(client: inngest.Inngest, settings: Settings) -> ExecutorRuns:
    """The REST API of the executor `client` sends events to."""
    keys = (settings.inngest_signing_key, settings.inngest_signing_key_fallback)
    return ExecutorRuns(
        client.api_origin, [key.get_secret_value() for key in keys if key is not None]
    )


def failure_reason(run: Run) -> str:
    """Why the run failed, in the words the failure handler would use."""
    for error in (run.output, run.last_error):
        if isinstance(error, dict) and isinstance(error.get("error"), dict):
            error = error["error"]
        if isinstance(error, dict) and (error.get("message") or error.get("error")):
            return readable_error(error)
        if isinstance(error, str) and error:
            return error
    return "the run failed and the executor gave no reason"


class Reconciler:
    def __init__(
        self,
        store: JobStore,
        sender: EventSender,
        runs: ExecutorRuns,
        *,
        quiet_for: timedelta,
        first_check: timedelta,
        every: float,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 20,
        parallel: int = 5,
    ) -> None:
        self._store = store
        self._sender = sender
        self._runs = runs
        self._quiet_for = quiet_for
        self._first_check = first_check
        self._every = every
        self._lease = lease
        self._batch = batch
        self._parallel = asyncio.Semaphore(parallel)

    async def reconcile_once(self) -> int:
        """Check one batch of due events; return how many were checked."""
        checks = await self._store.claim_checks(
            lease=self._lease, quiet_for=self._quiet_for, limit=self._batch
        )
        outcomes = await asyncio.gather(*(self._settle(check) for check in checks))
        unanswered = [
            check.id
            for check, outcome in zip(checks, outcomes, strict=True)
            if isinstance(outcome, ExecutorUnavailable)
        ]
        if unanswered:
            retry = min(self._quiet_for, timedelta(seconds=30))
            first = next(o for o in outcomes if isinstance(o, ExecutorUnavailable))
            log.warning(
                "the executor did not say how %d job(s) went (%s); asking again "
                "in %.0f s",
                len(unanswered),
                first,
                retry.total_seconds(),
            )
            await self._store.check_later(unanswered, retry)
        return len(checks)

    async def reconcile_forever(self) -> None:
        while True:
            try:
                checked = await self.reconcile_once()
            except Exception:
                log.exception("reconcile pass failed; trying again shortly")
                checked = 0
            # A full batch means more may be due: go on without a pause.
            if checked < self._batch:
                await asyncio.sleep(self._every)

    async def _settle(self, check: SentEvent) -> ExecutorUnavailable | None:
        async with self._parallel:
            try:
                run = await self._newest_run(check)
            except ExecutorUnavailable as exc:
                return exc
            # A job deleted by retention since the claim needs nothing.
            with contextlib.suppress(JobNotFound):
                await self._act(check, run)
        return None

    async def _newest_run(self, check: SentEvent) -> Run | None:
        # Only one send starts a run (the executor drops repeats of the id),
        # so the newest send that has runs is the one to look at.
        for executor_id in reversed(check.executor_ids):
            runs = await self._runs.runs_of(executor_id)
            if runs:
                return max(runs, key=lambda run: run.run_id)
        return None

    async def _act(self, check: SentEvent, run: Run | None) -> None:
        job_id = check.job_id
        if run is None:
            await self._no_run(check)
        elif run.status == "Cancelled":
            if await self._store.cancel(job_id):
                log.warning(
                    "job %s marked cancelled: its run %s was cancelled on the executor",
                    job_id,
                    run.run_id,
                )
        elif run.status == "Failed" or run.status in ENDED_WITHOUT_SUMMARY:
            reason = ENDED_WITHOUT_SUMMARY.get(run.status) or failure_reason(run)
            if await self._store.fail(job_id, reason):
                log.warning(
                    "job %s marked failed from its run %s (%s), which the "
                    "functions could not record: %s",
                    job_id,
                    run.run_id,
                    run.status,
                    reason,
                )
        else:
            # Queued, Running, or a state this code does not know: a slow
            # run is not a lost one.
            await self._store.check_later([check.id], self._quiet_for)

    async def _no_run(self, check: SentEvent) -> None:
        if check.sends >= MAX_SENDS:
            reason = (
                f"the executor started no run for this job after {check.sends} "
                "sends of its event; is the generate-summary function synced?"
            )
            if await self._store.fail(check.job_id, reason):
                log.error("job %s marked failed: %s", check.job_id, reason)
            return
        if not await self._store.send_again(check.id):
            return
        log.warning(
            "job %s (%s): the executor has no run for its event after %d "
            "send(s); sending it again, next check %.0f s after that",
            check.job_id,
            check.job_status,
            check.sends,
            recheck_delay(self._first_check, check.sends + 1).total_seconds(),
        )
        await self._sender.send_job_event(check.job_id)
