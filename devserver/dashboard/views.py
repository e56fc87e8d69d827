"""What the dashboard shows, as plain dicts shared by pages and JSON.

The templates render these dicts on the server and the page's script
fills the same fields from the JSON endpoints, so every text is computed
once, here. Values stay data: escaping is the template's job (autoescape)
and the script's (``textContent``).
"""

from __future__ import annotations

import json
from typing import Any

from devserver import wire
from devserver.clock import iso_ms
from devserver.dashboard.queries import (
    EventRow,
    PendingItem,
    RunRow,
    WaitingPause,
)
from devserver.store import Run, StepRecord, StoredEvent

# Longer values are cut in pages; the REST API has them whole.
MAX_SHOWN_CHARS = 20_000
_KINDS = {
    wire.Opcode.SLEEP.value: "sleep",
    wire.Opcode.WAIT_FOR_EVENT.value: "wait",
    wire.Opcode.INVOKE_FUNCTION.value: "invoke",
    wire.Opcode.AI_GATEWAY.value: "ai",
}
# Function settings shown beside its triggers, in this order.
_SETTINGS = (
    "concurrency",
    "throttle",
    "rateLimit",
    "debounce",
    "priority",
    "idempotency",
    "batchEvents",
    "singleton",
    "cancel",
    "timeouts",
)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def when_text(iso: str | None) -> str:
    """``2025-01-02 10:11:12.345 UTC`` for an ISO instant; the script shows
    local time instead once it runs."""
    if not iso:
        return ""
    return iso.replace("T", " ").removesuffix("Z") + " UTC"


def duration_text(ms: int | None) -> str:
    """``35 ms``, ``1.2 s``, ``3 m 4 s``, ``2 h 5 m``; empty if unknown."""
    if ms is None:
        return ""
    ms = max(ms, 0)
    if ms < 1_000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes} m {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} m"


def shown(value: Any, where: str) -> str:
    """Pretty JSON, cut at ``MAX_SHOWN_CHARS`` with a note saying where the rest is."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    rest = len(text) - MAX_SHOWN_CHARS
    return f"{text[:MAX_SHOWN_CHARS]}\n… {rest} more characters; all of it at {where}"


def error_text(error: Any) -> str:
    """``Name: message`` and the stack, for an error object or anything else."""
    if not isinstance(error, dict):
        return shown(error, "the REST API")
    head = f"{error.get('name') or 'Error'}: {error.get('message') or ''}".strip()
    stack = str(error.get("stack") or "").strip()
    # A Python traceback ends with the same line the head shows.
    stack = stack.removesuffix(head).rstrip()
    return f"{head}\n\n{stack}" if stack else head


def run_row_of(run: Run) -> RunRow:
    return RunRow(
        run_id=run.run_id,
        fn_id=run.fn_id,
        event_id=run.event_id,
        event_name=str(run.event.get("name", "")),
        status=run.status,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
    )


def run_summary(row: RunRow, now: int) -> dict[str, Any]:
    ended = row.status in ("Completed", "Failed", "Cancelled", "Skipped")
    start = row.started_at or row.created_at
    end = row.ended_at if ended else now
    return {
        "id": row.run_id,
        "url": f"/runs/{row.run_id}",
        "function": row.fn_id,
        "status": row.status,
        "state": row.status.lower(),
        "event_id": row.event_id,
        "event_name": row.event_name,
        "event_url": f"/events/{row.event_id}",
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "ended_at": _iso(row.ended_at),
        "duration": duration_text(None if end is None else end - start),
        "ended": ended,
        "cancellable": not ended,
    }


def run_detail(
    run: Run,
    steps: list[StepRecord],
    *,
    pending: dict[str, PendingItem],
    pauses: dict[str, WaitingPause],
    invoked: dict[str, RunRow],
    now: int,
) -> dict[str, Any]:
    """A run page's data: the run, its trigger event and its step timeline."""
    summary = run_summary(run_row_of(run), now)
    rest = f"/v1/runs/{run.run_id}"
    output = shown(run.output, rest) if run.status == "Completed" else ""
    error = ""
    if run.status == "Failed":
        error = error_text(run.output)
    elif run.last_error is not None:
        # A cancel's reason, or the last failed attempt of a run still going.
        error = error_text(run.last_error)
    batch = len(run.events)
    span_start = run.started_at or run.created_at
    span_end = max(
        [run.ended_at or now]
        + [s.ended_at for s in steps if s.ended_at is not None]
        + [s.started_at for s in steps if s.started_at is not None]
    )
    timeline = _Timeline(span_start, max(span_end - span_start, 1), now)
    return {
        "run": {
            **summary,
            "output": output,
            "error": error,
            "error_label": "Error" if run.status == "Failed" else "Last error",
            "step_count": f"{len(steps)} step{'' if len(steps) == 1 else 's'}",
        },
        "event": {
            "id": run.event_id,
            "url": f"/events/{run.event_id}",
            "name": str(run.event.get("name", "")),
            "payload": shown(run.event, f"/v1/events/{run.event_id}"),
            "batch": f"one of a batch of {batch} events" if batch > 1 else "",
        },
        "steps": [
            _step(
                s,
                pending.get(s.step_id),
                pauses.get(s.step_id),
                invoked.get(s.step_id),
                timeline,
                f"{rest}/steps",
            )
            for s in steps
        ],
    }


class _Timeline:
    """Where a step's bar sits, in percent of the run's span so far."""

    def __init__(self, start: int, span: int, now: int) -> None:
        self.start, self.span, self.now = start, span, now

    def bar(self, step: StepRecord) -> tuple[float, float]:
        if step.started_at is None:
            return 0.0, 0.0
        end = step.ended_at if step.ended_at is not None else self.now
        left = (step.started_at - self.start) / self.span * 100
        width = (end - step.started_at) / self.span * 100
        left = min(max(left, 0.0), 99.5)
        return round(left, 2), round(min(max(width, 0.5), 100.0 - left), 2)


def _step(
    step: StepRecord,
    item: PendingItem | None,
    pause: WaitingPause | None,
    child: RunRow | None,
    timeline: _Timeline,
    where: str,
) -> dict[str, Any]:
    kind = _KINDS.get(step.op, "step")
    detail, detail_time, detail_url = _step_detail(step, kind, item, pause, child)
    left, width = timeline.bar(step)
    end = step.ended_at if step.ended_at is not None else timeline.now
    shows_output = step.status == "Completed" and kind != "sleep"
    return {
        "id": step.step_id,
        "name": step.name,
        "kind": kind,
        "op": step.op,
        "status": step.status,
        "state": step.status.lower(),
        "attempt": f"attempt {step.attempts}" if step.attempts else "",
        "started_at": _iso(step.started_at),
        "ended_at": _iso(step.ended_at),
        "duration": ""
        if step.started_at is None
        else duration_text(end - step.started_at),
        "detail": detail,
        "detail_time": detail_time,
        "detail_url": detail_url,
        "output": shown(step.output, where) if shows_output else "",
        "error": "" if step.error is None else error_text(step.error),
        "bar_left": left,
        "bar_width": width,
    }


def _step_detail(
    step: StepRecord,
    kind: str,
    item: PendingItem | None,
    pause: WaitingPause | None,
    child: RunRow | None,
) -> tuple[str, str | None, str | None]:
    """A sentence on what the step waits for or waited for, a time, a link."""
    if kind == "sleep":
        if item is not None and item.kind == "sleep":
            return "sleeps until", iso_ms(item.due_at), None
        if step.ended_at is not None:
            return "woke up at", iso_ms(step.ended_at), None
    if kind == "wait":
        if pause is not None:
            condition = f" if {pause.expression}" if pause.expression else ""
            return (
                f"waits for event {pause.event}{condition}, at most until",
                iso_ms(pause.expires_at),
                None,
            )
        if step.status == "Completed":
            matched = step.output if isinstance(step.output, dict) else None
            if matched is None:
                return "timed out: no matching event arrived", None, None
            return f"matched event {matched.get('name', '')}", None, None
    if kind == "invoke" and child is not None:
        return (
            f"invoked {child.fn_id}: run {child.run_id} is {child.status}",
            None,
            f"/runs/{child.run_id}",
        )
    if step.status == "Retrying" and item is not None and item.kind == "call":
        return f"attempt {item.attempt + 1} due at", iso_ms(item.due_at), None
    if step.status == "Scheduled":
        return "queued", None, None
    return "", None, None


def event_summary(row: EventRow, runs: list[RunRow], now: int) -> dict[str, Any]:
    return {
        "id": row.internal_id,
        "url": f"/events/{row.internal_id}",
        "name": row.name,
        "received_at": _iso(row.received_at),
        "preview": row.data_preview,
        "run_count": _run_count(runs),
        "runs": [run_summary(r, now) for r in runs],
    }


def event_detail(stored: StoredEvent, runs: list[RunRow], now: int) -> dict[str, Any]:
    return {
        "event": {
            "id": stored.internal_id,
            "name": stored.event.get("name", ""),
            "received_at": _iso(stored.received_at),
            "payload": shown(stored.event, f"/v1/events/{stored.internal_id}"),
            "run_count": _run_count(runs),
        },
        "runs": [run_summary(r, now) for r in runs],
    }


def _run_count(runs: list[RunRow]) -> str:
    if not runs:
        return "started no run"
    return f"started {len(runs)} run{'' if len(runs) == 1 else 's'}"


def app_view(app: dict[str, Any]) -> dict[str, Any]:
    """An app of ``GET /v1/apps`` with its functions' triggers and settings."""
    return {
        **app,
        "functions": [_function_view(f) for f in app.get("functions", [])],
    }


def _function_view(function: dict[str, Any]) -> dict[str, Any]:
    config = function.get("config") or {}
    triggers = []
    for trigger in function.get("triggers") or []:
        if "cron" in trigger:
            triggers.append(f"cron {trigger['cron']}")
        elif "event" in trigger:
            expression = trigger.get("expression")
            condition = f" if {expression}" if expression else ""
            triggers.append(f"event {trigger['event']}{condition}")
    settings = [
        (name, json.dumps(config[name], ensure_ascii=False))
        for name in _SETTINGS
        if config.get(name) not in (None, [], {})
    ]
    retries = ((config.get("steps") or {}).get("step") or {}).get("retries")
    if isinstance(retries, dict) and "attempts" in retries:
        settings.insert(0, ("retries", json.dumps(retries["attempts"])))
    return {
        "slug": function.get("slug", ""),
        "name": function.get("name", ""),
        "url": function.get("url", ""),
        "triggers": triggers,
        "settings": settings,
    }
