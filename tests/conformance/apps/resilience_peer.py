"""A second, well-behaved app: its runs must not wait for another app's."""

from __future__ import annotations

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for

client = client_for("resilience-peer")


@client.create_function(
    fn_id="quick", trigger=inngest.TriggerEvent(event="resilience/quick"), retries=0
)
async def quick(ctx: inngest.Context) -> str:
    return "quick"


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [quick])
