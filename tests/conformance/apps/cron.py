"""A cron function (run with an accelerated cron clock)."""

from __future__ import annotations

from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for

client = client_for("cron")


@client.create_function(
    fn_id="every-minute",
    trigger=inngest.TriggerCron(cron="TZ=Europe/Paris * * * * *"),
    retries=0,
)
async def every_minute(ctx: inngest.Context) -> dict[str, Any]:
    return {"name": ctx.event.name, "id": ctx.event.id, "data": dict(ctx.event.data)}


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [every_minute])
