"""An Inngest app whose answers are JSON the executor must refuse.

Served by the official SDK, which writes its answers with ``json.dumps``:
a step that returns ``nan`` is answered as the bare word ``NaN``, a lone
surrogate as the escape ``\\ud800``, and deep nesting as it is. Each
function runs one attempt (``retries=0``) so a test sees its failure at
once. Started by uvicorn in a subprocess; ``EXECUTOR_URL`` says where the
executor listens.
"""

from __future__ import annotations

import os

import fastapi
import inngest
import inngest.fast_api

# Deeper than the executor's limit of 512 levels, but shallow enough for
# the SDK's own json.dumps.
TOO_DEEP = 600

EXECUTOR_URL = os.environ["EXECUTOR_URL"]

client = inngest.Inngest(
    app_id="hostile",
    is_production=False,
    api_base_url=EXECUTOR_URL,
    event_api_base_url=EXECUTOR_URL,
)


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _step_returning(fn_id: str, value: object) -> inngest.Function:
    @client.create_function(
        fn_id=fn_id, retries=0, trigger=inngest.TriggerEvent(event=f"hostile/{fn_id}")
    )
    async def function(ctx: inngest.Context) -> str:
        async def answer() -> object:
            return value

        await ctx.step.run("answer", answer)  # type: ignore[arg-type]
        return "not reached"

    return function


@client.create_function(
    fn_id="nan-output", retries=0, trigger=inngest.TriggerEvent(event="hostile/output")
)
async def nan_output(ctx: inngest.Context) -> float:
    return float("nan")


@client.create_function(
    fn_id="fine", retries=0, trigger=inngest.TriggerEvent(event="hostile/fine")
)
async def fine(ctx: inngest.Context) -> str:
    async def greet() -> str:
        return "hello"

    return await ctx.step.run("greet", greet)


FUNCTIONS = [
    _step_returning("nan-step", {"a": float("nan")}),
    _step_returning("infinity-step", [float("-inf")]),
    _step_returning("surrogate-step", {"text": "x\ud800y"}),
    _step_returning("deep-step", nested(TOO_DEEP)),
    nan_output,
    fine,
]

app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, FUNCTIONS)
