"""Runs that outlive crashes: of the app, of the executor, of a step."""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("resilience")


def _key(ctx: inngest.Context) -> str:
    return str(ctx.event.data["key"])


@client.create_function(
    fn_id="crash", trigger=inngest.TriggerEvent(event="resilience/crash"), retries=2
)
async def crash(ctx: inngest.Context) -> str:
    """The app process dies inside the step: once, or on every attempt."""
    key = _key(ctx)

    async def boom() -> str:
        count = mark(key, "boom")
        if ctx.event.data["mode"] == "always" or count == 1:
            os._exit(17)
        return "survived"

    return await ctx.step.run("boom", boom)


@client.create_function(
    fn_id="flaky", trigger=inngest.TriggerEvent(event="resilience/flaky"), retries=3
)
async def flaky(ctx: inngest.Context) -> str:
    key = _key(ctx)

    async def wobbly() -> str:
        if mark(key, "wobbly", repr(time.time())) == 1:
            raise ConnectionResetError("first attempt fails")
        return "steady"

    return await ctx.step.run("wobbly", wobbly)


@client.create_function(
    fn_id="blocker", trigger=inngest.TriggerEvent(event="resilience/blocker"), retries=0
)
async def blocker(ctx: inngest.Context) -> str:
    key = _key(ctx)

    async def hog() -> str:
        mark(key, "hog")
        # Deliberately blocks the app's event loop, as careless code does.
        time.sleep(float(ctx.event.data.get("seconds", 5)))  # noqa: ASYNC251
        return "done hogging"

    return await ctx.step.run("hog", hog)


@client.create_function(
    fn_id="durable", trigger=inngest.TriggerEvent(event="resilience/durable"), retries=2
)
async def durable(ctx: inngest.Context) -> Any:
    """One of several long phases, picked by `data.phase`."""
    key = _key(ctx)
    phase = ctx.event.data["phase"]

    async def begin() -> None:
        mark(key, "begin")

    await ctx.step.run("begin", begin)
    result: Any = None
    if phase == "mid-step":

        async def slow() -> str:
            mark(key, "slow")
            await asyncio.sleep(3)
            return "slow done"

        result = await ctx.step.run("slow", slow)
    elif phase == "sleep":
        await ctx.step.sleep("nap", datetime.timedelta(seconds=4))
        result = "slept"
    elif phase == "wait":
        found = await ctx.step.wait_for_event(
            "resume",
            event="resilience/resume",
            if_exp="async.data.key == event.data.key",
            timeout=datetime.timedelta(minutes=2),
        )
        result = None if found is None else found.data["note"]
    elif phase == "invoke":
        result = await ctx.step.invoke(
            "call", function=child, data={"key": key, "n": 5}
        )
    elif phase == "forever":
        await ctx.step.sleep("forever", datetime.timedelta(hours=1))

    async def end() -> None:
        mark(key, "end")

    await ctx.step.run("end", end)
    return result


@client.create_function(
    fn_id="child", trigger=inngest.TriggerEvent(event="resilience/child"), retries=0
)
async def child(ctx: inngest.Context) -> int:
    await ctx.step.sleep("child-nap", datetime.timedelta(seconds=3))
    return int(ctx.event.data["n"]) * 3


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [crash, flaky, blocker, durable, child])
