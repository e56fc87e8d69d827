"""An SDK app whose runs the dashboard tests look at, served by uvicorn.

Environment: ``EXECUTOR_URL`` (where the executor listens). Every function
takes its pacing from the event, so a test decides how long a run lasts.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import Any

import fastapi
import inngest
import inngest.fast_api

EXECUTOR_URL = os.environ["EXECUTOR_URL"]

client = inngest.Inngest(
    app_id="dashboard-tests",
    is_production=False,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
)


@client.create_function(
    fn_id="paced",
    trigger=inngest.TriggerEvent(event="dash/paced"),
    concurrency=[inngest.Concurrency(limit=4)],
    throttle=inngest.Throttle(limit=100, period=datetime.timedelta(minutes=1)),
)
async def paced(ctx: inngest.Context) -> dict[str, Any]:
    """Three steps, each taking ``data.pause`` seconds, so they fill in one by one."""
    pause = float(ctx.event.data.get("pause", 0.5))  # type: ignore[arg-type]

    def work(name: str) -> Any:
        async def body() -> str:
            await asyncio.sleep(pause)
            return f"{name} done"

        return body

    results = [
        await ctx.step.run(name, work(name)) for name in ("fetch", "parse", "store")
    ]
    return {"results": results}


@client.create_function(
    fn_id="broken", retries=0, trigger=inngest.TriggerEvent(event="dash/broken")
)
async def broken(ctx: inngest.Context) -> None:
    async def parse() -> None:
        raise ValueError(f"cannot parse {ctx.event.data.get('what', 'the input')}")

    await ctx.step.run("parse", parse)


@client.create_function(
    fn_id="sleepy",
    trigger=inngest.TriggerEvent(event="dash/sleepy"),
    cancel=[
        inngest.Cancel(
            event="dash/sleepy.stop", if_exp="event.data.key == async.data.key"
        )
    ],
)
async def sleepy(ctx: inngest.Context) -> str:
    async def before() -> str:
        return "awake"

    await ctx.step.run("before", before)
    await ctx.step.sleep("nap", datetime.timedelta(minutes=30))
    return "rested"


@client.create_function(
    fn_id="patient", trigger=inngest.TriggerEvent(event="dash/patient")
)
async def patient(ctx: inngest.Context) -> str:
    found = await ctx.step.wait_for_event(
        "approval",
        event="dash/approved",
        if_exp="async.data.key == event.data.key",
        timeout=datetime.timedelta(minutes=30),
    )
    return "approved" if found is not None else "timed out"


@client.create_function(
    fn_id="many", retries=0, trigger=inngest.TriggerEvent(event="dash/many")
)
async def many(ctx: inngest.Context) -> int:
    """``data.count`` small steps one after another."""
    total = 0
    for i in range(int(ctx.event.data["count"])):  # type: ignore[arg-type]

        async def one(i: int = i) -> int:
            return i

        total += await ctx.step.run(f"n{i}", one)
    return total


@client.create_function(
    fn_id="echo", retries=0, trigger=inngest.TriggerEvent(event="dash/echo")
)
async def echo(ctx: inngest.Context) -> dict[str, Any]:
    """Returns the event's text from a step and fails on ``data.fail``."""
    text = str(ctx.event.data.get("text", ""))

    async def repeat() -> str:
        return text

    said = await ctx.step.run("repeat", repeat)
    if ctx.event.data.get("fail"):

        async def complain() -> None:
            raise RuntimeError(text)

        await ctx.step.run("complain", complain)
    return {"said": said}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [paced, broken, sleepy, patient, many, echo])
