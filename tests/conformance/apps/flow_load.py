"""Many runs of a two-step function at once."""

from __future__ import annotations

from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("flow_load")


@client.create_function(
    fn_id="two-steps", trigger=inngest.TriggerEvent(event="flow_load/go"), retries=2
)
async def two_steps(ctx: inngest.Context) -> dict[str, Any]:
    batch, n = ctx.event.data["batch"], ctx.event.data["n"]

    async def one() -> int:
        mark(batch, "one", str(n))
        return n

    async def two(value: int) -> int:
        mark(batch, "two", str(n))
        return value * 2

    first = await ctx.step.run("one", one)
    return {"n": n, "double": await ctx.step.run("two", two, first)}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [two_steps])
