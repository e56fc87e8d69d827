"""An app that is stopped and started again on the same port by its test."""

from __future__ import annotations

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("restarting")


@client.create_function(
    fn_id="once", trigger=inngest.TriggerEvent(event="restarting/once"), retries=0
)
async def once(ctx: inngest.Context) -> str:
    key = ctx.event.data["key"]

    async def work() -> str:
        mark(key, "work")
        return "done"

    return await ctx.step.run("work", work)


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [once])
