"""An Inngest app for the executor's tests, served by the official SDK.

Started by uvicorn in a subprocess. Each step appends a line to a marker
file named after the test's ``data.key`` and the step, so a test can count
how often each step body ran, even across executor restarts.

Environment: ``EXECUTOR_URL`` (where the executor listens) and
``MARKER_DIR``.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import fastapi
import fastapi.responses
import inngest
import inngest.fast_api

EXECUTOR_URL = os.environ["EXECUTOR_URL"]
MARKER_DIR = Path(os.environ["MARKER_DIR"])

client = inngest.Inngest(
    app_id="devserver-tests",
    is_production=False,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
)


def mark(ctx: inngest.Context, step: str, text: str = "ran") -> int:
    """Record one execution of a step body; return how many there were."""
    path = MARKER_DIR / f"{ctx.event.data['key']}.{step}"
    with path.open("a") as f:
        f.write(text + "\n")
    return len(path.read_text().splitlines())


@client.create_function(fn_id="multi", trigger=inngest.TriggerEvent(event="test/multi"))
async def multi(ctx: inngest.Context) -> dict[str, object]:
    async def first() -> int:
        mark(ctx, "first")
        return 1

    async def second(a: int) -> int:
        mark(ctx, "second")
        return a + 10

    async def third() -> dict[str, int]:
        mark(ctx, "third")
        # A dict with a "data" key must round-trip unchanged.
        return {"data": 5}

    a = await ctx.step.run("first", first)
    b = await ctx.step.run("second", second, a)
    c = await ctx.step.run("third", third)
    return {"a": a, "b": b, "c": c}


@client.create_function(
    fn_id="parallel", trigger=inngest.TriggerEvent(event="test/parallel")
)
async def parallel(ctx: inngest.Context) -> dict[str, object]:
    mode = (
        inngest.ParallelMode.RACE
        if ctx.event.data.get("race")
        else inngest.ParallelMode.WAIT
    )

    def chunk(i: int) -> Callable[[], Awaitable[int]]:
        async def body() -> int:
            mark(ctx, f"chunk{i}")
            await asyncio.sleep(0.05 * i)
            return i * i

        return lambda: ctx.step.run(f"chunk-{i}", body)

    squares: tuple[int, ...] = await ctx.group.parallel(
        tuple(chunk(i) for i in range(3)), parallel_mode=mode
    )

    async def total() -> int:
        mark(ctx, "total")
        return sum(squares)

    return {"squares": list(squares), "total": await ctx.step.run("total", total)}


@client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="test/flaky"))
async def flaky(ctx: inngest.Context) -> str:
    async def shaky() -> str:
        count = mark(ctx, "shaky")
        if count <= 2:
            raise RuntimeError(f"failure number {count}")
        return f"ok after {count}"

    result = await ctx.step.run("shaky", shaky)
    # A function-level error (outside any step) is retried as well.
    if mark(ctx, "body") == 1:
        raise RuntimeError("function body fails once")
    return result


async def record_failure(ctx: inngest.Context) -> None:
    data: Any = ctx.event.data
    error = data["error"]
    path = MARKER_DIR / f"{data['event']['data']['key']}.on_failure"
    with path.open("a") as f:
        f.write(f"{error['name']}: {error['message']}\n")


@client.create_function(
    fn_id="doomed",
    retries=2,
    on_failure=record_failure,
    trigger=inngest.TriggerEvent(event="test/doomed"),
)
async def doomed(ctx: inngest.Context) -> None:
    async def hopeless() -> None:
        count = mark(ctx, "hopeless")
        raise ValueError(f"hopeless attempt {count}")

    await ctx.step.run("hopeless", hopeless)


@client.create_function(fn_id="fatal", trigger=inngest.TriggerEvent(event="test/fatal"))
async def fatal(ctx: inngest.Context) -> None:
    async def refuse() -> None:
        mark(ctx, "refuse")
        raise inngest.NonRetriableError("no point in retrying")

    await ctx.step.run("refuse", refuse)


@client.create_function(
    fn_id="sleeper", trigger=inngest.TriggerEvent(event="test/sleeper")
)
async def sleeper(ctx: inngest.Context) -> dict[str, float]:
    async def before() -> float:
        mark(ctx, "before")
        return datetime.datetime.now(datetime.UTC).timestamp()

    async def after() -> float:
        mark(ctx, "after")
        return datetime.datetime.now(datetime.UTC).timestamp()

    seconds = float(ctx.event.data.get("seconds", 1))  # type: ignore[arg-type]
    t0 = await ctx.step.run("before", before)
    await ctx.step.sleep("nap", datetime.timedelta(seconds=seconds))
    t1 = await ctx.step.run("after", after)
    return {"before": t0, "after": t1}


@client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="test/slow"))
async def slow(ctx: inngest.Context) -> list[str]:
    async def step_a() -> str:
        mark(ctx, "a")
        return "a"

    async def step_b() -> str:
        mark(ctx, "b")
        await asyncio.sleep(float(ctx.event.data.get("pause", 2)))  # type: ignore[arg-type]
        return "b"

    async def step_c() -> str:
        mark(ctx, "c")
        return "c"

    return [
        await ctx.step.run("a", step_a),
        await ctx.step.run("b", step_b),
        await ctx.step.run("c", step_c),
    ]


@client.create_function(fn_id="count", trigger=inngest.TriggerEvent(event="test/count"))
async def count(ctx: inngest.Context) -> int:
    return mark(ctx, "count")


@client.create_function(fn_id="waits", trigger=inngest.TriggerEvent(event="test/waits"))
async def waits(ctx: inngest.Context) -> str:
    found = await ctx.step.wait_for_event(
        "wait", event="test/never", timeout=datetime.timedelta(seconds=1)
    )
    return "timed out" if found is None else "matched"


app = fastapi.FastAPI()
inngest.fast_api.serve(
    app,
    client,
    [multi, parallel, flaky, doomed, fatal, sleeper, slow, count, waits],
)


@app.post("/not-sdk")
async def not_sdk() -> dict[str, str]:
    """A 200 JSON answer without the SDK's headers."""
    return {"hello": "world"}


@app.post("/html")
async def html() -> fastapi.responses.HTMLResponse:
    return fastapi.responses.HTMLResponse("<html><body>proxy error</body></html>")
