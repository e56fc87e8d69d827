"""`step.wait_for_event` and `step.invoke`."""

from __future__ import annotations

import datetime
import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("waits")


@client.create_function(
    fn_id="approval", trigger=inngest.TriggerEvent(event="waits/start"), retries=0
)
async def approval(ctx: inngest.Context) -> dict[str, Any]:
    """Waits for `waits/approve` with the same `data.id`, up to `timeout` s."""
    key = str(ctx.event.data["key"])

    async def ready() -> None:
        mark(key, "waiting")

    # The marker tells the test the wait is about to be reported.
    await ctx.step.run("ready", ready)
    found = await ctx.step.wait_for_event(
        "approve",
        event="waits/approve",
        if_exp="async.data.id == event.data.id",
        timeout=datetime.timedelta(seconds=float(ctx.event.data["timeout"])),
    )

    async def resumed() -> float:
        return time.time()

    at = await ctx.step.run("resumed", resumed)
    if found is None:
        return {"approved": None, "at": at}
    return {"approved": found.data, "name": found.name, "at": at}


@client.create_function(
    fn_id="child", trigger=inngest.TriggerEvent(event="waits/child"), retries=0
)
async def child(ctx: inngest.Context) -> dict[str, Any]:
    mode = ctx.event.data.get("mode")
    if mode == "fail":
        raise inngest.NonRetriableError("child refuses")
    if mode == "slow":
        await ctx.step.sleep("slowly", datetime.timedelta(seconds=5))
    return {"doubled": int(ctx.event.data.get("n", 0)) * 2, "name": ctx.event.name}


@client.create_function(
    fn_id="parent", trigger=inngest.TriggerEvent(event="waits/parent"), retries=0
)
async def parent(ctx: inngest.Context) -> Any:
    data = dict(ctx.event.data)
    try:
        if data.get("unknown"):
            return await ctx.step.invoke_by_id(
                "call-child", function_id="no-such-function", data=data
            )
        return await ctx.step.invoke(
            "call-child",
            function=child,
            data=data,
            timeout=datetime.timedelta(seconds=float(data.get("timeout", 60))),
        )
    except inngest.StepError as exc:
        return {"error": exc.name, "message": exc.message}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [approval, child, parent])
