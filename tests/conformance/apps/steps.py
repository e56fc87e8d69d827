"""`step.run` in depth: replays, parallel groups, repeated ids, sleeps,
`send_event`, step errors and retries, retry-after, and size limits."""

from __future__ import annotations

import datetime
import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import pydantic

from apps.common import EXECUTOR_URL, mark

# The pydantic serializer lets steps return datetimes and models.
client = inngest.Inngest(
    app_id="steps",
    is_production=False,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
    serializer=inngest.PydanticSerializer(),
)


class Reading(pydantic.BaseModel):
    sensor: str
    at: datetime.datetime
    value: float


def _key(ctx: inngest.Context) -> str:
    return str(ctx.event.data["key"])


@client.create_function(
    fn_id="typed", trigger=inngest.TriggerEvent(event="steps/typed"), retries=2
)
async def typed(ctx: inngest.Context) -> dict[str, Any]:
    """Typed outputs, then a step that fails once: every replay sees the same."""
    key = _key(ctx)

    async def when() -> datetime.datetime:
        return datetime.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=datetime.UTC)

    async def reading() -> Reading:
        return Reading(
            sensor="s1",
            at=datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
            value=1.5,
        )

    at = await ctx.step.run("when", when, output_type=datetime.datetime)
    model = await ctx.step.run("reading", reading, output_type=Reading)
    mark(key, "seen", f"{at.isoformat()}|{model.model_dump_json()}")

    async def flaky() -> str:
        if mark(key, "flaky") == 1:
            raise RuntimeError("first attempt fails")
        return "ok"

    await ctx.step.run("flaky", flaky)
    return {"at": at.isoformat(), "model": model.model_dump(mode="json")}


@client.create_function(
    fn_id="parallel", trigger=inngest.TriggerEvent(event="steps/parallel"), retries=0
)
async def parallel(ctx: inngest.Context) -> dict[str, Any]:
    key = _key(ctx)
    mode = (
        inngest.ParallelMode.RACE
        if ctx.event.data.get("race")
        else inngest.ParallelMode.WAIT
    )

    def branch(name: str, value: int) -> Any:
        async def body() -> int:
            mark(key, name)
            return value

        return lambda: ctx.step.run(name, body)

    values = await ctx.group.parallel(
        (branch("a", 1), branch("b", 2), branch("c", 3)), parallel_mode=mode
    )

    async def total() -> int:
        mark(key, "total")
        return sum(values)

    return {"values": list(values), "total": await ctx.step.run("total", total)}


@client.create_function(
    fn_id="repeat", trigger=inngest.TriggerEvent(event="steps/repeat"), retries=0
)
async def repeat(ctx: inngest.Context) -> dict[str, Any]:
    """One user id used three times in a loop and twice inside a parallel group."""
    key = _key(ctx)
    seen = []
    for i in range(3):

        async def wait(i: int = i) -> int:
            mark(key, "wait", str(i))
            return i

        seen.append(await ctx.step.run("wait", wait))

    def twin(i: int) -> Any:
        async def body() -> int:
            mark(key, "twin", str(i))
            return i * 10

        return lambda: ctx.step.run("twin", body)

    twins = await ctx.group.parallel((twin(1), twin(2)))
    return {"loop": seen, "twins": sorted(twins)}


@client.create_function(
    fn_id="sleeps", trigger=inngest.TriggerEvent(event="steps/sleeps"), retries=0
)
async def sleeps(ctx: inngest.Context) -> dict[str, float]:
    key = _key(ctx)

    async def now() -> float:
        return time.time()

    started = await ctx.step.run("start", now)
    await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    # Replays compute a later `until`; the executor keeps the first report.
    await ctx.step.sleep_until("alarm", until)
    await ctx.step.sleep_until(
        "past", datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )

    async def done() -> float:
        mark(key, "done")
        return time.time()

    finished = await ctx.step.run("done", done)
    return {"elapsed": finished - started}


@client.create_function(
    fn_id="sender", trigger=inngest.TriggerEvent(event="steps/sender"), retries=2
)
async def sender(ctx: inngest.Context) -> list[str]:
    key = _key(ctx)
    ids = await ctx.step.send_event(
        "send", inngest.Event(name="steps/sent", data={"key": key})
    )

    async def flaky() -> None:
        if mark(key, "after-send") == 1:
            raise RuntimeError("fails once, so the function replays")

    await ctx.step.run("after", flaky)
    return ids


@client.create_function(
    fn_id="receiver", trigger=inngest.TriggerEvent(event="steps/sent"), retries=0
)
async def receiver(ctx: inngest.Context) -> str:
    mark(_key(ctx), "received")
    return "got it"


@client.create_function(
    fn_id="failing", trigger=inngest.TriggerEvent(event="steps/failing"), retries=2
)
async def failing(ctx: inngest.Context) -> str:
    """A step failing on every attempt; the function catches the final error."""
    key = _key(ctx)

    async def doomed() -> None:
        attempt = mark(key, "doomed")
        raise ValueError(f"attempt {attempt} failed")

    try:
        await ctx.step.run("doomed", doomed)
    except inngest.StepError as exc:
        return f"caught {exc.name}: {exc.message}"
    return "unreachable"


@client.create_function(
    fn_id="uncaught", trigger=inngest.TriggerEvent(event="steps/uncaught"), retries=1
)
async def uncaught(ctx: inngest.Context) -> None:
    key = _key(ctx)

    async def doomed() -> None:
        mark(key, "doomed")
        raise KeyError("missing")

    await ctx.step.run("doomed", doomed)


@client.create_function(
    fn_id="fatal", trigger=inngest.TriggerEvent(event="steps/fatal"), retries=3
)
async def fatal(ctx: inngest.Context) -> None:
    key = _key(ctx)

    async def refuse() -> None:
        mark(key, "refuse")
        raise inngest.NonRetriableError("no point retrying")

    await ctx.step.run("refuse", refuse)


@client.create_function(
    fn_id="later", trigger=inngest.TriggerEvent(event="steps/later"), retries=1
)
async def later(ctx: inngest.Context) -> str:
    """RetryAfterError: each attempt notes when it ran; the delay comes from
    the event (`kind`: timedelta, datetime or ms)."""
    key = _key(ctx)
    seconds = float(ctx.event.data["seconds"])

    async def slow_down() -> str:
        count = mark(key, "attempt", repr(time.time()))
        if count > int(ctx.event.data["fail_times"]):
            return "done"
        kind = ctx.event.data["kind"]
        after: int | datetime.timedelta | datetime.datetime
        if kind == "timedelta":
            after = datetime.timedelta(seconds=seconds)
        elif kind == "datetime":
            after = datetime.datetime.now() + datetime.timedelta(seconds=seconds)
        else:
            after = int(seconds * 1000)
        raise inngest.RetryAfterError("busy", after)

    return await ctx.step.run("slow-down", slow_down)


@client.create_function(
    fn_id="big", trigger=inngest.TriggerEvent(event="steps/big"), retries=2
)
async def big(ctx: inngest.Context) -> dict[str, int]:
    """`count` steps each returning `size` bytes of text."""
    key = _key(ctx)
    size = int(ctx.event.data["size"])
    total = 0
    for i in range(int(ctx.event.data["count"])):

        async def blob(i: int = i) -> str:
            mark(key, f"blob{i}")
            return "x" * size

        total += len(await ctx.step.run(f"blob{i}", blob))
    return {"total": total}


@client.create_function(
    fn_id="many", trigger=inngest.TriggerEvent(event="steps/many"), retries=0
)
async def many(ctx: inngest.Context) -> int:
    """A parallel group of `count` steps."""
    count = int(ctx.event.data["count"])

    def one(i: int) -> Any:
        async def body() -> int:
            return i

        return lambda: ctx.step.run(f"n{i}", body)

    return sum(await ctx.group.parallel(tuple(one(i) for i in range(count))))


app = fastapi.FastAPI()
inngest.fast_api.serve(
    app,
    client,
    [
        typed,
        parallel,
        repeat,
        sleeps,
        sender,
        receiver,
        failing,
        uncaught,
        fatal,
        later,
        big,
        many,
    ],
)
