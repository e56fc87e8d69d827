"""Sync and re-sync: configuration comes from the environment, so a restart
with other settings is a changed app. `SERVE_PATH` sets the serve path
(for example with a trailing slash); `WITH_CANCEL` adds a `cancel` event."""

from __future__ import annotations

import datetime
import os

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for, mark

client = client_for("appsync")
SERVE_PATH = os.environ.get("SERVE_PATH", "/api/inngest")
WITH_CANCEL = bool(os.environ.get("WITH_CANCEL"))


@client.create_function(
    fn_id="napper",
    trigger=inngest.TriggerEvent(event="appsync/nap"),
    cancel=[inngest.Cancel(event="appsync/stop")] if WITH_CANCEL else None,
    retries=0,
)
async def napper(ctx: inngest.Context) -> str:
    key = str(ctx.event.data["key"])

    async def begin() -> None:
        mark(key, "begin")

    await ctx.step.run("begin", begin)
    await ctx.step.sleep("nap", datetime.timedelta(seconds=2))
    return "rested"


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [napper], serve_path=SERVE_PATH)
