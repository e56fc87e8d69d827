"""Each dashboard view's data, read from the running executor's store.

Pages render these dicts and the JSON endpoints return them as they are,
so what the script fills in is exactly what the server first rendered.
"""

from __future__ import annotations

from typing import Any

from devserver import events as ev
from devserver import wire
from devserver.clock import now_ms
from devserver.dashboard import views
from devserver.dashboard.params import EventFilter, RunFilter
from devserver.dashboard.queries import DashboardQueries
from devserver.runtime import Runtime


def runs(runtime: Runtime, chosen: RunFilter) -> dict[str, Any]:
    now = now_ms()
    rows = DashboardQueries(runtime.store).runs(
        fn_id=chosen.function or None,
        status=chosen.status or None,
        since_ms=None if chosen.within_ms is None else now - chosen.within_ms,
        limit=chosen.limit,
    )
    return {"runs": [views.run_summary(r, now) for r in rows]}


def function_ids(runtime: Runtime) -> list[str]:
    return DashboardQueries(runtime.store).function_ids()


def run(runtime: Runtime, run_id: str) -> dict[str, Any] | None:
    """The run page's data; None if no such run (or not a run id)."""
    if not ev.is_ulid(run_id):
        return None
    found = runtime.store.get_run(run_id)
    if found is None:
        return None
    queries = DashboardQueries(runtime.store)
    steps = runtime.store.list_steps(run_id)
    invokes = any(s.op == wire.Opcode.INVOKE_FUNCTION for s in steps)
    return views.run_detail(
        found,
        steps,
        pending=queries.pending_items(run_id),
        pauses=queries.pauses(run_id),
        invoked=queries.invoked_runs(run_id) if invokes else {},
        now=now_ms(),
    )


def events(runtime: Runtime, chosen: EventFilter) -> dict[str, Any]:
    now = now_ms()
    queries = DashboardQueries(runtime.store)
    rows = queries.events(
        name=chosen.name or None, text=chosen.text or None, limit=chosen.limit
    )
    started = queries.runs_of_events([r.internal_id for r in rows])
    return {
        "events": [views.event_summary(r, started[r.internal_id], now) for r in rows]
    }


def event(runtime: Runtime, event_id: str) -> dict[str, Any] | None:
    """The event page's data; None if no such event (or not an event id)."""
    if not ev.is_ulid(event_id):
        return None
    stored = runtime.store.get_event(event_id)
    if stored is None:
        return None
    started = DashboardQueries(runtime.store).runs_of_events([event_id])
    return views.event_detail(stored, started[event_id], now_ms())


def apps(runtime: Runtime) -> dict[str, Any]:
    listed = runtime.executor.app_health.list_apps()
    return {"apps": [views.app_view(a) for a in listed]}
