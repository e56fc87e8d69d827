"""Lifecycle events a run emits when it ends (protocol 6.10).

``inngest/function.failed`` (id = run id, so a failure handler runs once per
failed run), ``inngest/function.cancelled`` (id = run id) and
``inngest/function.finished`` (every end, with ``result`` or ``error``, and
``correlation_id`` when the run was invoked). Runs started by a lifecycle
event emit nothing, so a failing failure handler cannot start an endless
chain of handlers.
"""

from __future__ import annotations

from typing import Any

from ulid import ULID

from devserver import events as ev
from devserver import wire
from devserver.invoke import correlation
from devserver.store import Run


def lifecycle_events(run: Run) -> list[ev.Accepted]:
    """The events an ended run emits, in the order to process them."""
    if run.event.get("name") in ev.LIFECYCLE_EVENTS:
        return []
    data: dict[str, Any] = {
        "function_id": run.fn_id,
        "run_id": run.run_id,
        "event": wire.for_sdk(run.event),
        "events": [wire.for_sdk(e) for e in run.events],
        "_inngest": {"status": run.status},
    }
    link = correlation(run.event)
    finished_extra = {} if link is None else {"correlation_id": ".".join(link)}
    if run.status == "Failed":
        error = dict(run.output or {})
        summary = f"{error.get('name', 'Error')}: {error.get('message', '')}"
        failed = {**data, "error": {"error": summary, **error}}
        return [
            ev.internal_event(ev.FUNCTION_FAILED, run.run_id, failed),
            ev.internal_event(
                ev.FUNCTION_FINISHED, str(ULID()), {**failed, **finished_extra}
            ),
        ]
    if run.status == "Cancelled":
        return [
            ev.internal_event(ev.FUNCTION_CANCELLED, run.run_id, data),
            ev.internal_event(
                ev.FUNCTION_FINISHED, str(ULID()), {**data, **finished_extra}
            ),
        ]
    finished = {**data, "result": run.output, **finished_extra}
    return [ev.internal_event(ev.FUNCTION_FINISHED, str(ULID()), finished)]
