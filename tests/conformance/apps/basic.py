"""Plain event triggers and `step.run`."""

from __future__ import annotations

from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("basic")


@client.create_function(
    fn_id="steps", trigger=inngest.TriggerEvent(event="basic/steps"), retries=0
)
async def steps(ctx: inngest.Context) -> dict[str, Any]:
    key = ctx.event.data["key"]

    async def first() -> int:
        mark(key, "first")
        return 1

    async def second(value: int) -> dict[str, int]:
        mark(key, "second")
        return {"data": value + 1}

    one = await ctx.step.run("first", first)
    two = await ctx.step.run("second", second, one)
    return {"one": one, "two": two}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [steps])
