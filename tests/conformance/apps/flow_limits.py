"""Throttle, rate limit, idempotency, singleton and priority."""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("flow_limits")


async def _now() -> float:
    return time.time()


@client.create_function(
    fn_id="throttled",
    trigger=inngest.TriggerEvent(event="flow_limits/throttled"),
    throttle=inngest.Throttle(
        limit=1, period=datetime.timedelta(seconds=2), key="event.data.key"
    ),
    retries=0,
)
async def throttled(ctx: inngest.Context) -> dict[str, Any]:
    return {"n": ctx.event.data["n"], "started": await ctx.step.run("stamp", _now)}


@client.create_function(
    fn_id="rate-limited",
    trigger=inngest.TriggerEvent(event="flow_limits/rate"),
    rate_limit=inngest.RateLimit(
        limit=1, period=datetime.timedelta(minutes=1), key="event.data.key"
    ),
    retries=0,
)
async def rate_limited(ctx: inngest.Context) -> Any:
    # Marks show which events' runs called the app: a skipped one never does.
    mark(ctx.event.data["key"], "rate", str(ctx.event.data["n"]))
    return ctx.event.data["n"]


@client.create_function(
    fn_id="idempotent",
    trigger=inngest.TriggerEvent(event="flow_limits/idempotent"),
    idempotency="event.data.key",
    retries=0,
)
async def idempotent(ctx: inngest.Context) -> Any:
    mark(ctx.event.data["key"], "idempotent", str(ctx.event.data["n"]))
    return ctx.event.data["n"]


@client.create_function(
    fn_id="single",
    trigger=inngest.TriggerEvent(event="flow_limits/single"),
    singleton=inngest.Singleton(key="event.data.key", mode="skip"),
    retries=0,
)
async def single(ctx: inngest.Context) -> Any:
    # Once per call (before and after the sleep), so once per run is not
    # guaranteed; the tests only look at which events called.
    mark(ctx.event.data["key"], "single", str(ctx.event.data["n"]))
    await ctx.step.sleep("hold", datetime.timedelta(seconds=2))
    return ctx.event.data["n"]


@client.create_function(
    fn_id="prioritised",
    trigger=inngest.TriggerEvent(event="flow_limits/prioritised"),
    concurrency=[inngest.Concurrency(limit=1)],
    priority=inngest.Priority(run="event.data.prio"),
    retries=0,
)
async def prioritised(ctx: inngest.Context) -> Any:
    key, name = ctx.event.data["key"], ctx.event.data["name"]

    async def work() -> str:
        mark(key, "order", name)
        await asyncio.sleep(1.0)
        return name

    return await ctx.step.run("work", work)


app = fastapi.FastAPI()
inngest.fast_api.serve(
    app, client, [throttled, rate_limited, idempotent, single, prioritised]
)
