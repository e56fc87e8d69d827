"""Lifecycle events, failure handlers, cancellation and run timeouts."""

from __future__ import annotations

import datetime

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("lifecycle")


async def _record_failure(ctx: inngest.Context) -> None:
    data = ctx.event.data
    original = data["event"]
    mark(
        str(original["data"]["key"]),
        "on-failure",
        f"{ctx.event.name}|{data['run_id']}|{original['name']}|"
        f"{data['error']['name']}|{data['error']['message']}",
    )


@client.create_function(
    fn_id="breaks",
    trigger=inngest.TriggerEvent(event="lifecycle/breaks"),
    retries=1,
    on_failure=_record_failure,
)
async def breaks(ctx: inngest.Context) -> None:
    mark(str(ctx.event.data["key"]), "breaks")
    raise ValueError("broken on purpose")


@client.create_function(
    fn_id="works", trigger=inngest.TriggerEvent(event="lifecycle/works"), retries=0
)
async def works(ctx: inngest.Context) -> dict[str, int]:
    return {"answer": 42}


@client.create_function(
    fn_id="watcher",
    trigger=[
        inngest.TriggerEvent(
            event="inngest/function.finished",
            expression="event.data.function_id.startsWith('lifecycle-')",
        ),
        inngest.TriggerEvent(
            event="inngest/function.cancelled",
            expression="event.data.function_id.startsWith('lifecycle-')",
        ),
    ],
    retries=0,
)
async def watcher(ctx: inngest.Context) -> None:
    """Records every lifecycle event of this app's runs, itself included."""
    data = ctx.event.data
    original = data.get("event") or {}
    key = (original.get("data") or {}).get("key") or "no-key"
    status = (data.get("_inngest") or {}).get("status")
    detail = data.get("result") if "result" in data else data.get("error", {})
    mark(
        str(key),
        "watched",
        f"{ctx.event.name}|{data['function_id']}|{data['run_id']}|{status}|{detail}",
    )


@client.create_function(
    fn_id="patient",
    trigger=inngest.TriggerEvent(event="lifecycle/patient"),
    cancel=[
        inngest.Cancel(
            event="lifecycle/stop",
            if_exp="async.data.key == event.data.key",
            timeout=datetime.timedelta(seconds=3),
        )
    ],
    retries=0,
)
async def patient(ctx: inngest.Context) -> str:
    """Sleeps or waits (`data.how`) for a long time; cancel it."""
    key = str(ctx.event.data["key"])

    async def begin() -> None:
        mark(key, "begin")

    await ctx.step.run("begin", begin)
    if ctx.event.data.get("how") == "wait":
        await ctx.step.wait_for_event(
            "never", event="lifecycle/never", timeout=datetime.timedelta(minutes=5)
        )
    else:
        await ctx.step.sleep(
            "long", datetime.timedelta(seconds=float(ctx.event.data.get("sleep", 300)))
        )

    async def end() -> None:
        mark(key, "end")

    await ctx.step.run("end", end)
    return "finished"


@client.create_function(
    fn_id="deadline",
    trigger=inngest.TriggerEvent(event="lifecycle/deadline"),
    timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=1)),
    retries=0,
)
async def deadline(ctx: inngest.Context) -> str:
    key = str(ctx.event.data["key"])
    await ctx.step.sleep("nap", datetime.timedelta(seconds=3))
    mark(key, "after-nap")
    return "too late"


@client.create_function(
    fn_id="blocked-start",
    trigger=inngest.TriggerEvent(event="lifecycle/blocked-start"),
    timeouts=inngest.Timeouts(start=datetime.timedelta(seconds=1)),
    concurrency=[inngest.Concurrency(limit=1)],
    retries=0,
)
async def blocked_start(ctx: inngest.Context) -> str:
    """With a concurrency limit of 1, a second run cannot start while the
    first sleeps inside a step, so it misses its start deadline."""
    key = str(ctx.event.data["key"])

    async def hold() -> None:
        mark(key, "hold")
        import asyncio

        await asyncio.sleep(float(ctx.event.data.get("hold", 0)))

    await ctx.step.run("hold", hold)
    return "started"


app = fastapi.FastAPI()
inngest.fast_api.serve(
    app, client, [breaks, works, watcher, patient, deadline, blocked_start]
)
