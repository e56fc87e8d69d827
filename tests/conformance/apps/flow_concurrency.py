"""Concurrency limits: plain, keyed, env-scoped, with sleeps, and a fragile app."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("flow_concurrency")


async def _hold(group: str, seconds: float) -> str:
    """Occupy a call for a while and record when it was in flight."""
    entered = time.time()
    await asyncio.sleep(seconds)
    mark(group, "span", f"{entered} {time.time()}")
    return "done"


@client.create_function(
    fn_id="limited",
    trigger=inngest.TriggerEvent(event="flow_concurrency/limited"),
    concurrency=[inngest.Concurrency(limit=2)],
    retries=0,
)
async def limited(ctx: inngest.Context) -> str:
    group = ctx.event.data["group"]
    return await ctx.step.run("work", _hold, group, 0.4)


@client.create_function(
    fn_id="keyed",
    trigger=inngest.TriggerEvent(event="flow_concurrency/keyed"),
    concurrency=[inngest.Concurrency(limit=1, key="event.data.user")],
    retries=0,
)
async def keyed(ctx: inngest.Context) -> str:
    group = f"{ctx.event.data['group']}-{ctx.event.data['user']}"
    return await ctx.step.run("work", _hold, group, 0.4)


def _env_scoped(fn_id: str) -> inngest.Function[Any]:
    @client.create_function(
        fn_id=fn_id,
        trigger=inngest.TriggerEvent(event=f"flow_concurrency/{fn_id}"),
        concurrency=[inngest.Concurrency(limit=1, key="event.data.group", scope="env")],
        retries=0,
    )
    async def scoped(ctx: inngest.Context) -> str:
        return await ctx.step.run("work", _hold, ctx.event.data["group"], 0.4)

    return scoped


env_a = _env_scoped("env-a")
env_b = _env_scoped("env-b")


@client.create_function(
    fn_id="sleeper",
    trigger=inngest.TriggerEvent(event="flow_concurrency/sleeper"),
    concurrency=[inngest.Concurrency(limit=1, key="event.data.group")],
    retries=0,
)
async def sleeper(ctx: inngest.Context) -> str:
    group, name = ctx.event.data["group"], ctx.event.data["name"]

    async def stamp(step: str) -> float:
        mark(group, f"{name}-{step}", str(time.time()))
        return time.time()

    await ctx.step.run("before", stamp, "before")
    await ctx.step.sleep("nap", datetime.timedelta(seconds=3))
    await ctx.step.run("after", stamp, "after")
    return name


@client.create_function(
    fn_id="fragile",
    trigger=inngest.TriggerEvent(event="flow_concurrency/fragile"),
    concurrency=[inngest.Concurrency(limit=1, key="event.data.group")],
    retries=20,
)
async def fragile(ctx: inngest.Context) -> str:
    group, name = ctx.event.data["group"], ctx.event.data["name"]

    async def work() -> str:
        attempt = mark(group, f"{name}-attempt")
        if ctx.event.data.get("hang") and attempt == 1:
            # The test kills the app while this first attempt is in flight.
            await asyncio.sleep(60)
        return name

    return await ctx.step.run("work", work)


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [limited, keyed, env_a, env_b, sleeper, fragile])
