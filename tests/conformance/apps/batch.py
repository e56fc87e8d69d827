"""Event batching: size, timeout and key."""

from __future__ import annotations

import datetime
from typing import Any

import fastapi
import inngest
import inngest.fast_api

from apps.common import client_for

client = client_for("batch")


@client.create_function(
    fn_id="batched",
    trigger=inngest.TriggerEvent(event="batch/item"),
    batch_events=inngest.Batch(
        max_size=3, timeout=datetime.timedelta(seconds=2), key="event.data.group"
    ),
    retries=0,
)
async def batched(ctx: inngest.Context) -> dict[str, Any]:
    return {
        "first": ctx.event.data["n"],
        "all": [e.data["n"] for e in ctx.events],
    }


app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, [batched])
