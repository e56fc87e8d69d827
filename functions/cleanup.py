"""`cleanup-expired-jobs`: a cron function that deletes old jobs.

A job whose last change is older than JOB_RETENTION_DAYS goes, with its
steps, chunks, event log and outbox rows. The work is one step, so a retry
after a lost answer deletes nothing twice (a second pass finds nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import inngest

from backend.store import JobStore
from digest.settings import Settings

log = logging.getLogger("digest.functions.cleanup")


def build_cleanup(
    client: inngest.Inngest,
    settings: Settings,
    store: Callable[[], Awaitable[JobStore]],
) -> inngest.Function[Any]:
    keep_for = timedelta(days=settings.job_retention_days)

    @client.create_function(
        fn_id="cleanup-expired-jobs",
        name="Clean up expired jobs",
        trigger=inngest.TriggerCron(cron=settings.job_retention_cron),
        # Two passes at once would only race each other for the same rows.
        concurrency=[inngest.Concurrency(limit=1)],
    )
    async def cleanup_expired_jobs(ctx: inngest.Context) -> dict[str, Any]:
        async def delete_expired() -> dict[str, Any]:
            cutoff = datetime.now(UTC) - keep_for
            deleted = await (await store()).delete_jobs_changed_before(cutoff)
            if deleted:
                log.info("deleted %d job(s) unchanged since %s", deleted, cutoff)
            return {"deleted": deleted, "cutoff": cutoff.isoformat()}

        result: dict[str, Any] = await ctx.step.run("delete-expired", delete_expired)
        return result

    return cleanup_expired_jobs
